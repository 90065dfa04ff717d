"""Models of the seeds and the parameter scale R of the two-scale losses."""

from losslab.models.scale import parameter_scale

__all__ = ["parameter_scale"]
