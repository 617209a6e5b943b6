import logging

log = logging.getLogger("orders")
