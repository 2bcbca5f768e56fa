"""progface.losses"""
