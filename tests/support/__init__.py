"""Fixtures the suite and ``bench/`` share, kept out of the installed package.

- ``phantoms``: synthetic chest CT and radiograph folders with known anatomy.
- ``bundles``: tiny MONAI bundles in the real zip layout, installed into a test model registry.
- ``checkpoints``: real-format tiny checkpoints (DenseNet-121, PSPNet, SAM, report model, VLM).
- ``fakehub``: a loopback Hugging Face Hub that serves those checkpoints to the pull code.
- ``orthanc``: starts a local Orthanc PACS for the DICOMweb tests.
- ``serving``: starts ``copilot serve`` in its own process over test tools.

What plug-in authors use (contract checks, DICOM builders, the fake chat model, the
OpenAI-compatible fake server) stays in :mod:`copilot.testing`.
"""
