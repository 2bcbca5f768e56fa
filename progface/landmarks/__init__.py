"""Facial landmarks: networks, heatmap sources, and their evaluation.

- ``fan``: FAN-4 (face-alignment's 2D-FAN-4, 23,820,176 parameters), the paper's teacher.
- ``fan_distilled``: the paper's distilled FAN (321,412 parameters), used by the SR losses.
- ``heatmaps``: landmark coordinates <-> heatmaps (Gaussian rendering, argmax decoding).
- ``sources``: the ``HeatmapSource`` protocol and the built-in sources.
- weight specs, loaders and importers live in ``progface.weights.landmarks``.
- ``evaluate``: landmark prediction, NME against labels, NME of SR outputs.
- ``augment``, ``data``, ``figure``, ``cli``: distillation data, figures, commands.

Nothing is imported here, so ``import progface.landmarks`` stays cheap.
"""
