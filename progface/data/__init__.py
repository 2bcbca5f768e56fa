"""progface.data: crop policies, the paper's degradation chain, landmark files, datasets.

Images are float32 tensors [3, H, W] (batches [B, 3, H, W]) with values in [0, 1]; reading and
writing them is :mod:`progface.io.images`. Import the modules themselves
(``progface.data.degrade``, ``progface.data.datasets`` ...): this package imports none of them,
so that ``progface.io`` and ``progface.data`` can use each other without an import cycle.
"""
