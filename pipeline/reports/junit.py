"""junit.xml: one testcase per model × route × runtime × grid point, so CI systems show them natively."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from graphmint.pipeline.run.results import ModelResult, RouteResult
from graphmint.validators.results import ArtifactCheck, PointCheck, Status

__all__ = ["junit_xml"]


def _case(suite: ET.Element, classname: str, name: str, seconds: float = 0.0) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{seconds:.4f}")


def _point_numbers(point: PointCheck) -> str:
    lines = [f"sizes: {point.sizes}"] if point.sizes else []
    for o in point.outputs:
        lines.append(
            f"{o.name}: max_abs_error={o.max_abs_error} max_rel_error={o.max_rel_error} "
            f"mismatch_fraction={o.mismatch_fraction} atol={o.atol} rtol={o.rtol} "
            f"worst_index={o.worst_index} actual={o.worst_actual} expected={o.worst_expected}"
        )
    return "\n".join(lines)


def _add_check(suite: ET.Element, classname: str, route: RouteResult, check: ArtifactCheck) -> None:
    if check.status == Status.SKIPPED or (check.status == Status.ERROR and not check.points):
        case = _case(suite, classname, f"{check.runner}[load]")
        tag = "skipped" if check.status == Status.SKIPPED else "error"
        ET.SubElement(case, tag, message=check.reason)
        return
    for point in check.points:
        case = _case(suite, classname, f"{check.runner}[{point.label}]", point.seconds)
        if point.status == Status.PASSED:
            continue
        message = point.reason or check.reason
        if route.allowed_failure:
            ET.SubElement(case, "skipped", message=f"allowed to fail: {message}")
        elif point.status == Status.ERROR:
            ET.SubElement(case, "error", message=message).text = _point_numbers(point)
        else:
            ET.SubElement(case, "failure", message=message).text = _point_numbers(point)


def junit_xml(results: Sequence[ModelResult]) -> str:
    root = ET.Element("testsuites", name="graphmint")
    for model in results:
        suite = ET.SubElement(root, "testsuite", name=model.name)
        for route in model.routes:
            classname = f"graphmint.{model.name}.{route.route}"
            if not route.checks:  # skipped or rejected before anything could be checked
                case = _case(suite, classname, f"{route.stage or 'route'}", route.seconds)
                if route.status == Status.SKIPPED or route.allowed_failure:
                    prefix = "allowed to fail: " if route.allowed_failure else ""
                    ET.SubElement(case, "skipped", message=prefix + route.reason)
                elif route.status != Status.PASSED:
                    ET.SubElement(case, "error", message=route.reason)
                continue
            for check in route.checks:
                _add_check(suite, classname, route, check)
        cases = suite.findall("testcase")
        suite.set("tests", str(len(cases)))
        for tag in ("failure", "error", "skipped"):
            suite.set(
                tag + "s" if tag != "skipped" else tag, str(sum(c.find(tag) is not None for c in cases))
            )
        suite.set("time", f"{sum(float(c.get('time', '0')) for c in cases):.4f}")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
