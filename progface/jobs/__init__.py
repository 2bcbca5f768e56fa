"""progface.jobs"""
