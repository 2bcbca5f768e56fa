"""progface.train"""
