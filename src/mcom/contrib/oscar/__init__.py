"""mcom for django-oscar: connects an Oscar shop to the OMS through mcom (see ``docs/oscar.md``).

Add ``"mcom.contrib.oscar"`` to ``INSTALLED_APPS`` beside Oscar's and mcom's apps (or use
:mod:`mcom.contrib.oscar.settings`). Oscar's orders and catalogue are mirrored into mcom's
commerce tables (:mod:`.mirror`); what the OMS tells mcom is applied back to Oscar's models through
Oscar's pipeline (:mod:`.project`).
"""
