"""progface.models"""
