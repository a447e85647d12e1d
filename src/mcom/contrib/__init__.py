"""Adapters that connect mcom to other software (e.g. :mod:`mcom.contrib.oscar`)."""
