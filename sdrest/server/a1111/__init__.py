"""The AUTOMATIC1111 dialect (``/sdapi/v1``): its errors, names, options, images and answers.

The routes (:mod:`sdrest.server.routes.a1111`) translate each A1111 request onto the native request the parser
(:class:`sdrest.server.requests.RequestParser`) already checks, queue it like any other job, and answer in A1111's
shapes. Nothing here validates what the parser validates; it checks only A1111's own fields.
"""
