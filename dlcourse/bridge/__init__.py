"""The bridge between a test and the student's code.

* :mod:`.wire` -- what may cross: plain data and handles, read back with
  ``torch.load(weights_only=True)``; the request/reply framing.
* :mod:`.agent` -- the student side: answers requests against the
  notebook's namespace (untrusted: it only computes).
* :mod:`.backends` -- the test side: where ``dlcourse.testing.student``
  sends its requests (this process, or a graded notebook's kernel).
"""
