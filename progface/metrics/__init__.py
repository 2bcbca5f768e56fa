"""progface.metrics"""
