"""The engine: owns state and lifecycle, knows nothing of HTTP.

`Engine` wires the subsystems together; API handlers reach them as `request.app.engine.images`,
`request.app.engine.containers`, ...
"""
