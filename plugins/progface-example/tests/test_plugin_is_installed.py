from progface import plugins


def test_registered():
    assert plugins.get("methods", "sharp-bicubic").plugin == "example"
    assert plugins.get("metrics", "mae").higher_is_better is False
