"""progface.landmarks"""
