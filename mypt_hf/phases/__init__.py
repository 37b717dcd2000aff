"""Phase orchestration: the registry of phases and their settings (registry.py, settings.py), one phase run
(run.py: config -> data -> prepare -> train -> gate -> save), each phase's own steps (recipes.py), the chain
(chain.py) and its summary report (report.py). Built on the trainer, data and evaluation libraries below it.

Submodules are imported on use, so ``import mypt_hf.phases.registry`` stays light.
"""
