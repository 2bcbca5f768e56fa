from progface import plugins


def test_registered():
    assert plugins.get("methods", "myplugin-nearest").plugin == "myplugin"
