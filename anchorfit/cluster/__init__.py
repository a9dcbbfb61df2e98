"""Anchor clustering and the metric catalogue.

``cluster_anchors`` turns box sizes into anchors per level (IoU k-means, YOLOv5 evolution,
scikit-learn baseline; level-aware or area-split); ``metrics.evaluate`` scores any anchors with
every metric real assigners use.
"""

from anchorfit.cluster.api import METHODS, ClusterResult, cluster_anchors
from anchorfit.cluster.compress import compress
from anchorfit.cluster.kmeans import iou_kmeans
from anchorfit.cluster.metrics import AnchorMetrics, GridSpec, evaluate
from anchorfit.cluster.yolov5 import yolov5_anchors

__all__ = ["METHODS", "AnchorMetrics", "ClusterResult", "GridSpec", "cluster_anchors",
           "compress", "evaluate", "iou_kmeans", "yolov5_anchors"]
