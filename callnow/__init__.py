"""CallNow: web callback requests for hosted PBX extensions."""

__version__ = "0.1.0"
