"""progface.io"""
