"""losslab: a laboratory for the loss and activation functions of classification networks.

Subpackages:
    losses       every loss of the seeds as a drop-in PyTorch module (registry ``LOSSES``)
    activations  every activation of the seeds (registry ``ACTIVATIONS``)
    init         the weight initialisers (registry ``INITIALIZERS``, as ``torch.nn.init``)
    npnet        a from-scratch NumPy engine with hand-derived backward passes
    data         datasets, splits, label and input noise
    models       MLPs and convnets of the seeds; ``parameter_scale`` (R of the two-scale losses)
    train        the trainer and the many-models-at-once engine
    metrics      the metrics of the seeds
"""

from losslab.errors import LosslabError

__version__ = "0.1.0"
__all__ = ["LosslabError", "__version__"]
