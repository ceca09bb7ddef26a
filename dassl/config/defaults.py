"""The default config tree (Dassl 0.6.3's keys used by the prompt-learning toolkit, plus ours)."""
from yacs.config import CfgNode as CN


def _input():
    node = CN()
    node.SIZE = (224, 224)
    node.INTERPOLATION = "bilinear"
    node.TRANSFORMS = ()
    node.NO_TRANSFORM = False
    node.PIXEL_MEAN = [0.485, 0.456, 0.406]
    node.PIXEL_STD = [0.229, 0.224, 0.225]
    node.CROP_PADDING = 4
    node.RRCROP_SCALE = (0.08, 1.0)
    node.CUTOUT_N = 1
    node.CUTOUT_LEN = 16
    node.GN_MEAN = 0.0
    node.GN_STD = 0.15
    node.RANDAUGMENT_N = 2
    node.RANDAUGMENT_M = 10
    node.COLORJITTER_B = 0.4
    node.COLORJITTER_C = 0.4
    node.COLORJITTER_S = 0.4
    node.COLORJITTER_H = 0.1
    node.RGS_P = 0.2
    node.GB_P = 0.5
    node.GB_K = 21
    return node


def _dataset():
    node = CN()
    node.ROOT = ""
    node.NAME = ""
    node.SOURCE_DOMAINS = ()
    node.TARGET_DOMAINS = ()
    node.NUM_LABELED = -1
    node.NUM_SHOTS = -1
    node.VAL_PERCENT = 0.1
    node.STL10_FOLD = -1
    node.CIFAR_C_TYPE = ""
    node.CIFAR_C_LEVEL = 1
    node.ALL_AS_UNLABELED = False
    node.SUBSAMPLE_CLASSES = "all"
    return node


def _loader(sampler, batch_size, with_domains=True):
    node = CN()
    node.SAMPLER = sampler
    node.BATCH_SIZE = batch_size
    if with_domains:
        node.N_DOMAIN = 0
        node.N_INS = 16
    return node


def _dataloader():
    node = CN()
    node.NUM_WORKERS = 4
    node.K_TRANSFORMS = 1
    node.RETURN_IMG0 = False
    # MiB of decoded images each dataset keeps for its next pass (0: decode every time); same batches
    node.DECODED_CACHE_MB = 0
    node.TRAIN_X = _loader("RandomSampler", 32)
    node.TRAIN_U = _loader("RandomSampler", 32)
    node.TRAIN_U.SAME_AS_X = True
    node.TEST = _loader("SequentialSampler", 32, with_domains=False)
    return node


def _model():
    node = CN()
    node.INIT_WEIGHTS = ""
    node.BACKBONE = CN()
    node.BACKBONE.NAME = ""
    node.BACKBONE.PRETRAINED = True
    node.BACKBONE.PATH = ""
    node.HEAD = CN()
    node.HEAD.NAME = ""
    node.HEAD.HIDDEN_LAYERS = ()
    node.HEAD.ACTIVATION = "relu"
    node.HEAD.BN = True
    node.HEAD.DROPOUT = 0.0
    return node


def _optim():
    node = CN()
    node.NAME = "adam"
    node.LR = 0.0003
    node.WEIGHT_DECAY = 5e-4
    node.MOMENTUM = 0.9
    node.SGD_DAMPNING = 0.0
    node.SGD_NESTEROV = False
    node.RMSPROP_ALPHA = 0.99
    node.ADAM_BETA1 = 0.9
    node.ADAM_BETA2 = 0.999
    node.ADAM_EPS = 1e-8
    node.STAGED_LR = False
    node.NEW_LAYERS = ()
    node.BASE_LR_MULT = 0.1
    node.LR_SCHEDULER = "single_step"
    node.STEPSIZE = (-1,)
    node.GAMMA = 0.1
    node.MAX_EPOCH = 10
    node.WARMUP_EPOCH = -1
    node.WARMUP_TYPE = "linear"
    node.WARMUP_CONS_LR = 1e-5
    node.WARMUP_MIN_LR = 1e-5
    node.WARMUP_RECOUNT = True
    node.MAX_ITER = 0
    node.WARMUP_ITER = 0
    return node


def _train():
    node = CN()
    node.CHECKPOINT_FREQ = 0
    # Resumable state every N epochs (iteration mode: N loader passes), newest two kept; 0: off
    node.SAVE_RESUMABLE_EVERY = 1
    node.PRINT_FREQ = 10
    node.COUNT_ITER = "train_x"
    node.VAL_FREQ = 0
    return node


def _test():
    node = CN()
    node.EVALUATOR = "Classification"
    node.PER_CLASS_RESULT = False
    node.COMPUTE_CMAT = False
    node.NO_TEST = False
    node.SPLIT = "test"
    node.FINAL_MODEL = "last_step"
    return node


def build_default_cfg():
    """A fresh default tree. Method-specific TRAINER.<NAME> nodes come from cfg extensions."""
    cfg = CN()
    cfg.VERSION = 1
    cfg.OUTPUT_DIR = "./output"
    cfg.RESUME = ""
    cfg.SEED = -1
    cfg.USE_CUDA = True
    cfg.VERBOSE = True
    cfg.INPUT = _input()
    cfg.DATASET = _dataset()
    cfg.DATALOADER = _dataloader()
    cfg.MODEL = _model()
    cfg.OPTIM = _optim()
    cfg.TRAIN = _train()
    cfg.TEST = _test()
    cfg.TRAINER = CN()
    cfg.TRAINER.NAME = ""
    return cfg
