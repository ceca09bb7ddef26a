"""The one error of reporting: input it cannot make a table of."""
from dassl.utils.errors import InputError


class ReportError(InputError):
    """No table can be made from this input; the message says what to do."""
