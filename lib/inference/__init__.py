"""Inference on images and videos: backends that turn a float32 batch into heatmaps, and a predictor that
turns an image and person boxes into keypoints in image pixels."""
