"""progface.train.recipes"""
