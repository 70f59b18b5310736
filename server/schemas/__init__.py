"""Request and response schemas, one module per resource; every route declares one."""
