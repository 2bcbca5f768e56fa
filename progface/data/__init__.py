"""progface.data"""
