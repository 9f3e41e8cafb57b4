"""The operations: each wires models, backends, calibration and validate for one job (export, calibrate, build,
parity, bench, report, evaluate, train). They return results; rendering them is the CLI's job."""
