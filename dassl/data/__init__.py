from .data_manager import DataManager, build_data_loader
from .dataset_wrapper import DatasetWrapper
