"""Serving an ASGI application, shared by the bank and the merchant's terminal:
read deadlines and a connection cap (:mod:`.deadlines`), a server on a
thread of this process for tests and the demo (:mod:`.threaded`), and the
small helpers both command lines need. Everything here stays on uvicorn's
documented settings and ASGI, so that no version of uvicorn can break it
by changing its internals."""
