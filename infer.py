r"""Predict and draw human poses on an image, a folder of images or a video (top-down: one crop per person box).

    python infer.py --input photo.jpg --pretrained_model output/mpii_hourglass8_256x256/best_model/model.pdparams
    python infer.py --input photos/ --pretrained_model <...>.pdparams --det_file detections.json --det_thr 0.5
    python infer.py --input clip.mp4 --pretrained_model <...>.pdparams --bbox 120,40,200,380
    python infer.py --input photos/ --backend paddle-inference --model_dir output/export/hourglass8_256x256

Person boxes come from --det_file (COCO detection results: a list of {image_id, bbox [x, y, w, h], score,
category_id}, or an object with an `images` list of {id, file_name} and those detections under
`annotations`), from --bbox (the same box for every image or frame), or else the whole image is one person.
The network, its input size and normalisation and the test settings come from the configuration of the
weights (the config.json beside them, or the exported folder's inference.json: weights_config), under
--config, the flags and --set as in val.py (an exported model keeps the network and input size it was
traced with). Writes to --output_dir the drawn images under their own file names, or
<name>_pose.mp4 for a video, and keypoints.json: [{image (file name, or frame index), persons: [{bbox,
keypoints [[x, y, score] x K] in image pixels, score (mean joint score)}]}].
"""
import argparse
import json
import math
import os
import re
import sys
import warnings
from typing import Callable, Dict, Iterator, List, Optional, Tuple

warnings.filterwarnings('ignore', message='No ccache found')  # Paddle's import-time notice: noise in logs
import cv2  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from lib.utils.errors import BadValue, MissingFile, NotWritable, UnreadableFile, run_cli  # noqa: E402
from lib.utils.threads import set_mkl_cpu_type  # noqa: E402  (before Paddle)
from lib.cli import (BOXES, DATA, MODEL, RUN, TEST, add_front_door, add_weights_argument, flag_values, pick,  # noqa: E402
                     print_config, script_parser)
from lib.config import resolve_config, size_name  # noqa: E402
from lib.core.metrics import require_finite_predictions  # noqa: E402
from lib.datasets.coco import boxes_outside, detection_problem  # noqa: E402
from lib.datasets.image_io import read_image  # noqa: E402
from lib.inference.backends import BACKENDS, load_backend  # noqa: E402
from lib.inference.conventions import weights_config  # noqa: E402
from lib.inference.predictor import PosePredictor  # noqa: E402
from lib.utils.files import read_json, require_writable_dir  # noqa: E402
from lib.utils.logger import progress  # noqa: E402
from lib.vis.drawing import draw_skeleton  # noqa: E402

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv')
BOX_BGR = (0, 200, 0)
# The network and its input come with the weights; a flag overrides them (dygraph only: an exported program
# is fixed). No data set, no loader workers.
# --det_file is val.py's (BOXES): the same person detections; here an image without a kept one gets no person.
GROUPS = (pick(DATA, 'image_size'), MODEL, TEST, pick(BOXES, 'det_file'), pick(RUN, 'device'))


def parse_args(argv=None) -> argparse.Namespace:
    p, preset = script_parser(__doc__, argv, weights=True)
    p.add_argument('--input', help=f'an image, a folder of images ({" ".join(IMAGE_EXTENSIONS)}) '
                   f'or a video ({" ".join(VIDEO_EXTENSIONS)})')
    p.add_argument('--backend', default='dygraph', choices=sorted(BACKENDS),
                   help='dygraph runs --pretrained_model; paddle-inference and onnxruntime run --model_dir')
    add_weights_argument(p)
    p.add_argument('--model_dir', help='folder written by export.py (for --backend paddle-inference / onnxruntime)')
    p.add_argument('--det_thr', type=float, default=0.5, help='keep detections with at least this score (default 0.5)')
    p.add_argument('--bbox', help='x,y,w,h: one person box (pixels) for every image or frame')
    p.add_argument('--kpt_thr', type=float, default=0.3, help='joints scoring below this are not drawn (default 0.3)')
    p.add_argument('--output_dir', default='output/infer', help='where drawings and keypoints.json go')
    add_front_door(p, GROUPS, preset)
    args = p.parse_args(argv)
    if args.print_config:
        return args
    if not args.input:
        p.error('the following arguments are required: --input')
    if args.backend == 'dygraph' and (not args.pretrained_model or args.model_dir):
        p.error('--backend dygraph takes --pretrained_model (a .pdparams), not --model_dir')
    if args.backend != 'dygraph' and (not args.model_dir or args.pretrained_model):
        p.error(f'--backend {args.backend} takes --model_dir (the folder export.py wrote), not --pretrained_model')
    if args.det_file and args.bbox:
        p.error('give --det_file or --bbox, not both')
    for name in ('det_thr', 'kpt_thr'):
        value = getattr(args, name)
        if not (math.isfinite(value) and 0 <= value <= 1):
            p.error(f'--{name} must be a score threshold in [0, 1], e.g. 0.5; received {value}')
    return args


def parse_bbox(text: str) -> np.ndarray:
    """'x,y,w,h' -> [1, 4] float32."""
    try:
        values = [float(v) for v in text.split(',')]
    except ValueError:
        values = []
    if len(values) != 4 or values[2] <= 0 or values[3] <= 0:
        raise BadValue(f'--bbox {text!r} is not x,y,w,h with w, h > 0 (pixels), e.g. --bbox 120,40,200,380.')
    return np.array([values], dtype=np.float32)


def list_inputs(path: str) -> Tuple[str, List[str]]:
    """('video', [path]) or ('images', [paths]): a folder's images in name order (not recursive)."""
    if not os.path.exists(path):
        raise MissingFile(f'--input {path} does not exist; give an image, a folder of images or a video.')
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS)
                       and os.path.isfile(os.path.join(path, n)))
        if not names:
            raise BadValue(f'--input folder {path} holds no images; accepted extensions: '
                           f'{", ".join(IMAGE_EXTENSIONS)} (any case). Give a video file directly, not its folder.')
        return 'images', [os.path.join(path, n) for n in names]
    return ('video' if path.lower().endswith(VIDEO_EXTENSIONS) else 'images'), [path]


def image_id_from_name(name: str) -> Optional[int]:
    """COCO-style id of a file name: the last run of digits in its stem (000000000139.jpg -> 139)."""
    digits = re.findall(r'\d+', os.path.splitext(os.path.basename(name))[0])
    return int(digits[-1]) if digits else None


def require_inside(boxes: Optional[np.ndarray], image: np.ndarray, path: str, args) -> None:
    """Refuse boxes that miss the image entirely (x, y, w, h given in another image's pixels, or swapped)."""
    height, width = image.shape[:2]
    outside = boxes_outside(boxes, width, height) if boxes is not None else []
    if len(outside):
        source = f'--det_file {args.det_file}' if args.det_file else f'--bbox {args.bbox}'
        raise BadValue(f'{source}: the box(es) {outside.tolist()} for {path} lie outside the image '
                       f'({width} px wide, {height} px high); boxes are x, y, w, h in that image\'s pixels.')


def load_detections(path: str, names: List[str], threshold: float) -> Dict[str, np.ndarray]:
    """Person boxes [M, 4] (x, y, w, h) per image file name, category 1 with score >= threshold.

    Images are matched to image_id by the `images` list (file_name -> id) when the JSON has one, else by
    the integer in the file name. Raises when no input image is matched at all.
    """
    if not os.path.isfile(path):
        raise MissingFile(f'--det_file {path} does not exist.')
    data = read_json(path, 'COCO detection results (a JSON list of {image_id, bbox, score, category_id})')
    if isinstance(data, dict):
        if not isinstance(data.get('images'), list) or not isinstance(data.get('annotations'), list):
            raise BadValue(f'--det_file {path} is a JSON object without `images` and `annotations` lists; expected '
                           'COCO detection results (a list of {image_id, bbox, score, category_id}) or an object '
                           'with `images` [{id, file_name}] and those detections under `annotations`.')
        ids = {os.path.basename(im['file_name']): im['id'] for im in data['images']}
        image_id = ids.get
        rule = f'by file_name in its `images` list ({len(ids)} entries)'
        detections = data['annotations']
    elif isinstance(data, list):
        image_id, detections = image_id_from_name, data
        rule = 'by the integer in the file name (000000000139.jpg -> image_id 139), as it has no `images` list'
    else:
        raise BadValue(f'--det_file {path} holds a JSON {type(data).__name__}; expected a list of detections.')

    boxes, present = {}, set()
    for i, det in enumerate(detections):
        problem = detection_problem(det, required=('image_id', 'bbox'), id_types=(int, str), positive_size=True)
        if problem:
            raise BadValue(f'--det_file {path}: detection {i} is malformed: {problem}. Received {str(det)[:200]}. Each '
                           'needs image_id, bbox [x, y, w, h] (pixels, w and h > 0) and may have score (a number in [0, 1]) and '
                           'category_id (1 = person).')
        present.add(det['image_id'])
        if det.get('category_id', 1) == 1 and det.get('score', 1.0) >= threshold:
            boxes.setdefault(det['image_id'], []).append(det['bbox'])
    names = [os.path.basename(n) for n in names]
    if not any(image_id(n) in present for n in names):
        raise BadValue(f'--det_file {path} has no detection for {names[0]!r} nor any other input image; images '
                       f'are matched {rule}. Check that the file belongs to these images.')
    return {n: np.asarray(boxes.get(image_id(n), []), np.float32).reshape(-1, 4) for n in names}


def draw(image: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, layout,
         kpt_thr: float, draw_boxes: bool) -> np.ndarray:
    out = image.copy()
    for box, points, joint_scores in zip(boxes, keypoints, scores):
        if draw_boxes:
            x, y, w, h = (int(round(v)) for v in box)
            cv2.rectangle(out, (x, y), (x + w, y + h), BOX_BGR, 1, cv2.LINE_AA)
        out = draw_skeleton(out, points, layout, joint_scores >= kpt_thr)
    return out


def person_records(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray) -> List[dict]:
    return [{'bbox': [round(float(v), 2) for v in box],
             'keypoints': [[round(float(x), 2), round(float(y), 2), round(float(s), 4)]
                           for (x, y), s in zip(points, joint_scores)],
             'score': round(float(np.mean(joint_scores)), 4) if len(joint_scores) else 0.0}
            for box, points, joint_scores in zip(boxes, keypoints, scores)]


class PeopleBatcher:
    """Collects (key, image, boxes) until a batch of people is full, then predicts, draws and records."""

    def __init__(self, predictor: PosePredictor, kpt_thr: float, sink: Callable[[object, np.ndarray], None]):
        self.predictor, self.kpt_thr, self.sink = predictor, kpt_thr, sink
        self.pending, self.people, self.records = [], 0, []

    def add(self, key, image: np.ndarray, boxes: Optional[np.ndarray]) -> None:
        whole = boxes is None
        if whole:
            boxes = np.array([[0, 0, image.shape[1], image.shape[0]]], dtype=np.float32)
        self.pending.append((key, image, boxes, not whole))
        self.people += len(boxes)
        if self.people >= self.predictor.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        results = self.predictor.predict_many([p[1] for p in self.pending], [p[2] for p in self.pending])
        for (key, image, boxes, draw_boxes), (keypoints, scores) in zip(self.pending, results):
            require_finite_predictions(keypoints, scores)      # keypoints.json must stay valid JSON
            self.sink(key, draw(image, boxes, keypoints, scores, self.predictor.layout, self.kpt_thr, draw_boxes))
            self.records.append({'image': key, 'persons': person_records(boxes, keypoints, scores)})
        self.pending, self.people = [], 0


def run_images(paths: List[str], predictor: PosePredictor, boxes_for: Callable[[str], Optional[np.ndarray]],
               args) -> List[dict]:
    """Predict on each readable image (a folder's unreadable ones are skipped with a warning), write the drawings."""
    def save(name, drawn):
        out_path = os.path.join(args.output_dir, name)
        if not cv2.imwrite(out_path, drawn):
            raise NotWritable(f'cannot write {out_path}; check that --output_dir is writable.')

    runner = PeopleBatcher(predictor, args.kpt_thr, save)
    for path in progress(paths, len(paths), 'images'):
        try:
            image = read_image(path, color_rgb=False)      # BGR, as drawn; a truncated JPEG is refused
        except UnreadableFile as error:
            if len(paths) == 1:
                raise
            tqdm.write(f'warning: {error} Skipped.', file=sys.stderr)
            continue
        name = os.path.basename(path)
        boxes = boxes_for(name)
        require_inside(boxes, image, path, args)
        runner.add(name, image, boxes)
    runner.flush()
    return runner.records


def open_video(path: str) -> Tuple[cv2.VideoCapture, float, int]:
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise BadValue(f'cannot open video {path}: OpenCV (with its FFmpeg build) cannot decode it. Check that the '
                       'file is complete and plays elsewhere, or re-encode it to H.264 / MPEG-4 '
                       '(ffmpeg -i in.mkv -c:v libx264 out.mp4), or extract frames to a folder of images.')
    fps = capture.get(cv2.CAP_PROP_FPS)
    return capture, (fps if fps and fps > 0 else 25.0), int(capture.get(cv2.CAP_PROP_FRAME_COUNT))


def frames(capture: cv2.VideoCapture) -> Iterator[np.ndarray]:
    while True:
        ok, frame = capture.read()
        if not ok:
            return
        yield frame


def run_video(path: str, predictor: PosePredictor, box: Optional[np.ndarray], args) -> Tuple[List[dict], str]:
    """Predict on every frame; writes <name>_pose.mp4 (mp4v, the input's fps and size)."""
    capture, fps, count = open_video(path)
    out_path = os.path.join(args.output_dir, os.path.splitext(os.path.basename(path))[0] + '_pose.mp4')
    writer, written = None, 0

    def save(index, drawn):
        nonlocal writer, written
        if writer is None:
            size = (drawn.shape[1], drawn.shape[0])
            writer = cv2.VideoWriter(out_path, cv2.VideoWriter_fourcc(*'mp4v'), fps, size)
            if not writer.isOpened():
                raise NotWritable(f'cannot write {out_path} with the mp4v codec at {size[1]}x{size[0]} (frames '
                                  f'{size[1]} high, {size[0]} wide); check that --output_dir is writable and that '
                                  'this OpenCV build has FFmpeg.')
        writer.write(drawn)
        written += 1

    runner = PeopleBatcher(predictor, args.kpt_thr, save)
    try:
        for index, frame in enumerate(progress(frames(capture), count or None, 'frames')):
            if index == 0:
                require_inside(box, frame, path, args)
            runner.add(index, frame, box)
        runner.flush()
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    if written == 0:
        raise BadValue(f'video {path} opened but yielded no frame; it may be empty or its codec unsupported '
                       '(re-encode it to H.264 / MPEG-4).')
    return runner.records, out_path


def build_config(args: argparse.Namespace, saved):
    """The configuration of the weights (or exported folder), `saved` = weights_config(path), <- --config <-
    flags <- --set."""
    return resolve_config(flag_values(args, GROUPS), run_config=saved, config_file=args.config, sets=args.set)


def main(argv=None) -> int:
    args = parse_args(argv)
    set_mkl_cpu_type()
    saved = weights_config(args.pretrained_model or args.model_dir)    # reads inference.json once
    config = build_config(args, saved)
    if args.print_config:
        return print_config(config)
    args.det_file = config.test.det_file or None      # the flag, or --config / --set test.det_file
    kind, paths = list_inputs(args.input)
    if kind == 'video' and args.det_file:
        raise BadValue('--det_file matches images by name; for a video give --bbox x,y,w,h or no box (whole frame).')
    box = parse_bbox(args.bbox) if args.bbox else None
    detections = load_detections(args.det_file, paths, args.det_thr) if args.det_file else None
    require_writable_dir(args.output_dir, '--output_dir')
    if kind == 'images' and any(os.path.abspath(os.path.join(args.output_dir, os.path.basename(p))) ==
                                os.path.abspath(p) for p in paths):
        raise BadValue(f'--output_dir {args.output_dir} holds the input images, which the drawings would '
                       'overwrite; choose another --output_dir.')

    if args.backend == 'dygraph':
        from lib.models import check_model     # imports Paddle: not for the onnxruntime backend
        check_model(config)
    backend = load_backend(args.backend, args.pretrained_model or args.model_dir, config, args.threads, saved)
    predictor = PosePredictor.from_config(backend, config)
    data, test = config.data, config.test
    print(f'{config.model.label} ({args.backend}), input {size_name(data.input_wh)} '
          f'{"RGB" if data.color_rgb else "BGR"}, flip test {"on" if test.flip_test else "off"}, '
          f'decoder {predictor.codec.method}, '
          f'{predictor.layout.name} joints')

    if kind == 'video':
        records, out_path = run_video(paths[0], predictor, box, args)
        print(f'Wrote {out_path} ({len(records)} frames)')
    else:
        boxes_for = (lambda name: detections[name]) if detections is not None else (lambda name: box)
        records = run_images(paths, predictor, boxes_for, args)
        print(f'Wrote {len(records)} drawn image(s) to {args.output_dir}')
    json_path = os.path.join(args.output_dir, 'keypoints.json')
    with open(json_path, 'w') as f:
        json.dump(records, f)
    print(f'Wrote {json_path} ({sum(len(r["persons"]) for r in records)} people)')
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
