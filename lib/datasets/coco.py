"""COCO person keypoints for top-down pose estimation: ground-truth and detected boxes (SPEC H.1, H.2).

Follows HRNet's lib/dataset/coco.py (SimpleBaselines, Xiao et al. 2018) without pycocotools: the JSON is
read directly, so training does not need it. Two layouts are accepted:

    <root>/annotations/person_keypoints_{train2017,val2017}.json
    <root>/images/{train2017,val2017}/%012d.jpg     (HRNet)   or   <root>/{train2017,val2017}/%012d.jpg
"""
import math
import os
from collections import OrderedDict
from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from lib.datasets.skeletons import COCO, KeypointLayout
from lib.datasets.transforms import box_to_center_scale
from lib.utils.files import read_json
from lib.utils.errors import BadValue, MissingFile

IMAGE_SETS = ('train2017', 'val2017')
PERSON_CATEGORY = 1

LAYOUT_HELP = """Expected COCO person keypoints in one of these layouts:
    {root}/annotations/person_keypoints_{image_set}.json
    {root}/images/{image_set}/000000xxxxxx.jpg     (HRNet's layout)
  or
    {root}/annotations/person_keypoints_{image_set}.json
    {root}/{image_set}/000000xxxxxx.jpg            (the layout of the COCO zips)
Get the images and annotations_trainval2017.zip from https://cocodataset.org/#download."""

Record = Dict[str, object]


class CocoFiles(NamedTuple):
    annotation: str   # person_keypoints_<set>.json
    image_dir: str    # folder of %012d.jpg; records' `image` is relative to it


def coco_files(root: str, image_set: str, need_images: bool = True) -> CocoFiles:
    """Locate the annotation file and the image folder of `image_set`, or raise with both layouts. Without
    `need_images` (evaluation of saved predictions, the oracle) a missing image folder is no error."""
    if image_set not in IMAGE_SETS:
        raise BadValue(f'unknown COCO image set {image_set!r}; choose one of {IMAGE_SETS}.')
    help_text = LAYOUT_HELP.format(root=root, image_set=image_set)
    annotation = os.path.join(root, 'annotations', f'person_keypoints_{image_set}.json')
    if not os.path.isfile(annotation):
        raise MissingFile(f'{annotation} does not exist (--dataset_root {root!r}).\n{help_text}')
    candidates = (os.path.join(root, 'images', image_set), os.path.join(root, image_set))
    for image_dir in candidates:
        if os.path.isdir(image_dir):
            return CocoFiles(annotation, image_dir)
    if not need_images:
        return CocoFiles(annotation, candidates[0])
    raise MissingFile(f'no image folder for {image_set}: neither {candidates[0]} nor {candidates[1]} exists '
                      f'(--dataset_root {root!r}).\n{help_text}')


def image_file_name(image_id: int) -> str:
    return '%012d.jpg' % image_id


def sanitize_box(box: Sequence[float], width: int, height: int) -> Union[List[float], None]:
    """HRNet's box clean-up: clip [x, y, w, h] to the image; None if it is empty (SPEC H.1 step 2)."""
    x, y, w, h = box
    x1, y1 = max(0, x), max(0, y)
    x2 = min(width - 1, x1 + max(0, w - 1))
    y2 = min(height - 1, y1 + max(0, h - 1))
    if x2 >= x1 and y2 >= y1:
        return [x1, y1, x2 - x1, y2 - y1]
    return None


def boxes_outside(boxes, width: int, height: int) -> np.ndarray:
    """The boxes [M, 4] (x, y, w, h pixels) that do not overlap a width x height image at all: given in
    another image's pixels, or with x, y and w, h swapped (COCO detections, infer.py's boxes)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x, y, w, h = boxes.T
    return boxes[(x >= width) | (y >= height) | (x + w <= 0) | (y + h <= 0)]


VISIBILITY_FLAGS = (0, 1, 2)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def detection_problem(det, required: Sequence[str], id_types: tuple, positive_size: bool = False) -> Optional[str]:
    """What is wrong with one person detection {image_id, category_id, bbox [x, y, w, h], score}, or None.
    A box may be empty in one direction (HRNet's evaluation keeps such boxes) unless `positive_size`."""
    if not isinstance(det, Mapping):
        return 'not a JSON object'
    missing = [key for key in required if key not in det]
    if missing:
        return f'it lacks {", ".join(missing)}'
    if not isinstance(det['image_id'], id_types) or isinstance(det['image_id'], bool):
        return f'image_id {det["image_id"]!r} is not an integer'
    bbox = det['bbox']
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
        return f'bbox {bbox!r} is not 4 finite numbers [x, y, w, h]'
    if positive_size and min(bbox[2:]) <= 0:
        return f'bbox {bbox} does not have w, h > 0'
    if bbox[2] < 0 or bbox[3] < 0 or bbox[2] + bbox[3] == 0:
        return f'bbox {bbox} has a negative or zero size (w, h >= 0, not both 0)'
    if 'score' in det and not (_is_number(det['score']) and 0 <= det['score'] <= 1):
        return f'score {det["score"]!r} is not a number in [0, 1]'
    if 'category_id' in det and (not isinstance(det['category_id'], int) or isinstance(det['category_id'], bool)):
        return f'category_id {det["category_id"]!r} is not an integer (1 = person)'
    return None


def _fail(path: str, index: int, entry, problem: str) -> None:
    if isinstance(entry, dict):
        entry = {k: v for k, v in entry.items() if k != 'segmentation'}
    raise BadValue(f'{path}: annotation {index} is malformed: {problem}. Received {str(entry)[:300]}. Each '
                   'annotation must have image_id, category_id, iscrowd, area, bbox [x, y, w, h] and keypoints '
                   '[x, y, v] x 17 (COCO person_keypoints format); fix or remove that annotation.')


def _check_dataset(dataset, path: str) -> Tuple[Dict[int, dict], list]:
    """images by id (file order) and the annotation list of a parsed person_keypoints JSON."""
    if not isinstance(dataset, Mapping) or not isinstance(dataset.get('images'), list) \
            or not isinstance(dataset.get('annotations'), list):
        keys = sorted(dataset) if isinstance(dataset, Mapping) else type(dataset).__name__
        raise BadValue(f'{path} is not a COCO annotation file: expected a JSON object with lists "images" and '
                       f'"annotations"; received {keys}.')
    images = OrderedDict()
    for i, image in enumerate(dataset['images']):
        if not isinstance(image, Mapping) or not all(k in image for k in ('id', 'width', 'height')):
            raise BadValue(f'{path}: image {i} is malformed: {str(image)[:200]}. Each image needs id, width '
                           'and height; fix or remove it.')
        images[int(image['id'])] = image
    return images, dataset['annotations']


def _parse_object(obj, index: int, path: str, images: Mapping[int, dict], num_joints: int):
    """Validated (image_id, bbox, keypoints [K, 3]) of a non-crowd person annotation, None for others."""
    if not isinstance(obj, Mapping):
        _fail(path, index, obj, 'not a JSON object')
    for key in ('image_id', 'category_id', 'bbox', 'area', 'keypoints'):
        if key not in obj:
            _fail(path, index, obj, f'missing field {key!r}')
    if obj.get('iscrowd', 0) or obj['category_id'] != PERSON_CATEGORY:
        return None
    if obj['image_id'] not in images:
        _fail(path, index, obj, f'image_id {obj["image_id"]} is not in "images"')
    try:
        box = [float(v) for v in obj['bbox']]
        keypoints = np.array(obj['keypoints'], dtype=np.float64)
        area = float(obj['area'])
    except (TypeError, ValueError):
        _fail(path, index, obj, 'bbox, area and keypoints must be numbers')
    if len(box) != 4 or not np.all(np.isfinite(box)):
        _fail(path, index, obj, f'bbox has {len(box)} values, expected 4 finite numbers [x, y, w, h]')
    if keypoints.shape != (num_joints * 3,) or not np.all(np.isfinite(keypoints)):
        _fail(path, index, obj, f'keypoints has shape {keypoints.shape}, expected {num_joints * 3} finite numbers '
                                f'({num_joints} joints x [x, y, v])')
    visibility = keypoints[2::3]
    if not np.all(np.isin(visibility, VISIBILITY_FLAGS)):
        _fail(path, index, obj, f'keypoint visibility flags {sorted(set(visibility.tolist()) - set(VISIBILITY_FLAGS))} '
                                f'are not COCO\'s 0 (not labelled), 1 (labelled, hidden) or 2 (visible)')
    return int(obj['image_id']), box, area, keypoints.reshape(num_joints, 3)


def parse_coco_keypoints(annotation, input_wh: Tuple[int, int], layout: KeypointLayout = COCO) -> List[Record]:
    """Ground-truth boxes of a person_keypoints JSON (a path or its parsed content) -> records (SPEC H.1).

    As HRNet's _load_coco_keypoint_annotations: images in file order, their annotations in file order; crowd
    annotations are skipped, boxes sanitised (kept if area > 0 and non-empty after clipping), objects
    without any keypoint dropped. Each record: image (file name, relative to the image folder), image_id,
    center [2] and scale [2] (float32, HRNet's _xywh2cs with aspect input_w / input_h), joints [K, 2]
    (COCO keypoints are already 0-based pixels), joints_vis [K] = min(v, 1), area (the annotation's), score 1.
    """
    path = annotation if isinstance(annotation, str) else '<annotations>'
    dataset = read_json(annotation, 'COCO annotation file', 're-download or regenerate it') if isinstance(annotation, str) else annotation
    images, annotations = _check_dataset(dataset, path)
    aspect_ratio = input_wh[0] * 1.0 / input_wh[1]
    by_image = {image_id: [] for image_id in images}
    for index, obj in enumerate(annotations):
        parsed = _parse_object(obj, index, path, images, layout.num_joints)
        if parsed is not None:
            by_image[parsed[0]].append(parsed)

    records = []
    for image_id, image in images.items():
        for _, box, area, keypoints in by_image[image_id]:
            clean = sanitize_box(box, image['width'], image['height'])
            if area <= 0 or clean is None or keypoints.max() == 0:
                continue
            center, scale = box_to_center_scale(clean, aspect_ratio)
            records.append({'image': image_file_name(image_id), 'image_id': image_id, 'center': center,
                            'scale': scale, 'joints': keypoints[:, :2].copy(),
                            'joints_vis': np.minimum(keypoints[:, 2], 1.0), 'area': area, 'score': 1.0})
    return records


def load_coco_annotations(root: str, image_set: str, input_wh: Tuple[int, int]) -> List[Record]:
    """Ground-truth person boxes of <root>/annotations/person_keypoints_<image_set>.json (see
    parse_coco_keypoints); images are in coco_files(root, image_set).image_dir."""
    return parse_coco_keypoints(coco_files(root, image_set, need_images=False).annotation, input_wh)


def _images_by_id(coco) -> Dict[int, dict]:
    """The images ({id, width, height, ...}) by id of an annotation file given as a path, its parsed JSON, or a
    pycocotools COCO object."""
    if isinstance(coco, str):
        coco = read_json(coco, 'COCO annotation file', 're-download or regenerate it')
    dataset = getattr(coco, 'dataset', coco)
    images, _ = _check_dataset(dataset, '<annotations>')
    return images


def load_detection_boxes(det_file: str, coco, image_set: str, input_wh: Tuple[int, int],
                         image_thre: float, layout: KeypointLayout = COCO) -> List[Record]:
    """Person boxes of a detector (HRNet's _load_coco_person_detection_results, SPEC H.2) -> records.

    det_file: JSON list of {image_id, category_id, bbox [x, y, w, h], score}, e.g.
    COCO_val2017_detections_AP_H_56_person.json. coco: the annotation file of `image_set` (path, parsed JSON
    or pycocotools COCO), used to check the image ids and that each box overlaps its image. Keeps category 1
    with score >= image_thre (HRNet's TEST.IMAGE_THRE; its yamls use 0.0). Each box becomes one record: center/scale from the raw box (not
    sanitised, as HRNet), joints zeros, joints_vis ones, score = box score.
    """
    if not os.path.isfile(det_file):
        raise MissingFile(f'detection file not found: {det_file}. HRNet\'s val2017 boxes are '
                          'person_detection_results/COCO_val2017_detections_AP_H_56_person.json (see its '
                          'README, "Data preparation"), or evaluate with ground-truth boxes.')
    boxes = read_json(det_file, 'detection file', 're-download or regenerate it')
    if not isinstance(boxes, list):
        raise BadValue(f'{det_file} must hold a JSON list of {{image_id, category_id, bbox, score}}; received '
                       f'{type(boxes).__name__}.')
    known = _images_by_id(coco)
    aspect_ratio = input_wh[0] * 1.0 / input_wh[1]
    records, unknown = [], []
    for index, det in enumerate(boxes):
        problem = detection_problem(det, required=('image_id', 'category_id', 'bbox', 'score'), id_types=(int,))
        if problem:
            raise BadValue(f'{det_file}: box {index} is malformed: {problem}. Received {str(det)[:200]}. Each box '
                           'needs image_id, category_id, bbox [x, y, w, h] and score (HRNet\'s detection files).')
        if det['category_id'] != PERSON_CATEGORY:
            continue
        if det['image_id'] not in known:
            unknown.append(det['image_id'])
            continue
        score = float(det['score'])
        if score < image_thre:
            continue
        image = known[det['image_id']]
        if len(boxes_outside(det['bbox'], image['width'], image['height'])):
            raise BadValue(f'{det_file}: box {index} {det["bbox"]} lies outside its image {det["image_id"]} '
                           f'({image["width"]} px wide, {image["height"]} px high); boxes are x, y, w, h in image '
                           'pixels.')
        center, scale = box_to_center_scale(det['bbox'], aspect_ratio)
        records.append({'image': image_file_name(int(det['image_id'])), 'image_id': int(det['image_id']),
                        'center': center, 'scale': scale,
                        'joints': np.zeros((layout.num_joints, 2)), 'joints_vis': np.ones(layout.num_joints),
                        'score': score})
    if unknown:
        first = sorted(set(unknown))[:5]
        raise BadValue(f'{det_file}: {len(unknown)} person boxes refer to image ids that are not in the '
                       f'{image_set} annotation file (first: {first}). Use the detections of {image_set} '
                       '(e.g. COCO_val2017_detections_AP_H_56_person.json for val2017).')
    if not records:
        raise BadValue(f'{det_file}: no person box has score >= image_thre {image_thre} (out of {len(boxes)} '
                       'boxes). Lower the threshold (HRNet\'s yamls use 0.0) or check the file.')
    return records
