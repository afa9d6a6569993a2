"""The good inputs that tests/bad_inputs.py spoils one at a time: made once, copied for each case."""
import json
import os
import shutil

from tests.bad_inputs import TINY_MODEL, Workspace

COCO_ANNOTATION = os.path.join('annotations', 'person_keypoints_val2017.json')


def _tiny_coco(root: str) -> None:
    """A COCO val2017 annotation file with one image and two people, and an empty image folder (the oracle
    reads no image)."""
    os.makedirs(os.path.join(root, 'annotations'))
    os.makedirs(os.path.join(root, 'val2017'))
    people = []
    for number, (x, y) in enumerate([(100, 50), (300, 80)], 1):
        keypoints = []
        for joint in range(17):
            keypoints += [x + 5 * (joint % 4), y + 10 * joint, 2]
        people.append({'id': number, 'image_id': 1, 'category_id': 1, 'iscrowd': 0, 'area': 12000.0,
                       'bbox': [x - 20, y - 10, 80, 190], 'keypoints': keypoints, 'num_keypoints': 17})
    values = {'images': [{'id': 1, 'file_name': '000000000001.jpg', 'width': 640, 'height': 480}],
              'annotations': people,
              'categories': [{'id': 1, 'name': 'person', 'supercategory': 'person'}]}
    with open(os.path.join(root, COCO_ANNOTATION), 'w') as f:
        json.dump(values, f)


def prepare_base(root: str) -> Workspace:
    """Synthetic MPII (8 training, 4 validation people), a one-step tiny hourglass trained on it (config.json
    beside it), its Paddle Inference export, and a tiny COCO annotation file."""
    import export
    import train
    from lib.datasets.synthetic import make_synthetic_mpii
    base = os.path.join(root, 'base')
    data = os.path.join(base, 'data')
    make_synthetic_mpii(data, num_train=8, num_valid=4, seed=0)
    assert train.main(['--dataset_root', data, '--output_dir', base, '--run_name', 'run', '--batch_size', '4',
                       '--workers', '0', '--device', 'cpu', '--epochs', '1', '--max_iters', '1',
                       *TINY_MODEL]) == 0
    weights = os.path.join(base, 'run', 'best_model', 'model.pdparams')
    model_dir = os.path.join(base, 'export')
    assert export.main(['--pretrained_model', weights, '--output_dir', model_dir, '--no_check']) == 0
    coco = os.path.join(base, 'coco')
    _tiny_coco(coco)
    tmp = os.path.join(base, 'tmp')
    os.makedirs(tmp)
    return Workspace(data, weights, model_dir, tmp, coco)


def workspace_for(base: Workspace, folder: str) -> Workspace:
    """A copy of `base` in `folder` that a case may spoil (the whole run folder of the weights is copied, so
    that its config.json lies beside them as train.py leaves it)."""
    run = os.path.dirname(os.path.dirname(base.weights))
    copies = {}
    for name, source in (('data', base.data), ('run', run), ('export', base.model_dir), ('coco', base.coco)):
        copies[name] = os.path.join(folder, name)
        shutil.copytree(source, copies[name])
    tmp = os.path.join(folder, 'tmp')
    os.makedirs(tmp)
    return Workspace(copies['data'], os.path.join(copies['run'], 'best_model', 'model.pdparams'), copies['export'],
                     tmp, copies['coco'])
