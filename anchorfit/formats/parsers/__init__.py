"""Parsers of the config languages detector files are written in, side by side: YAML with line
numbers (``yamlsrc``), Caffe's protobuf text format (``prototxt``) and the safe subset of Python
that mmdetection/detectron2 configs use (``pyconfig``). They know nothing about detectors; the
readers in ``anchorfit.formats`` turn what they parse into levels and networks."""
