"""progface.builtin"""
