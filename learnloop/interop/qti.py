"""QTI 3.0 (1EdTech Question and Test Interoperability) assessment items in and out.

Choice items become ``qti-choice-interaction``, numeric items ``qti-text-entry-interaction``
with a float response (tolerance in ``qti-equal``), text items ``qti-extended-text-interaction``
(reference answers as the correct response; scored by people or Learnloop's grader), code
items a preformatted ``qti-extended-text-interaction`` whose default value is the starter and
correct response the solution, with the language and the cases (JSON) in a scorer's rubric
block (``use="ext:learnloop-code"``): other tools show it as an essay in code, Learnloop's
importer reads it back as the code item. The explanation is a ``qti-modal-feedback``. What QTI
has no element for (skills, difficulty, minutes, unit, hints, rubric criteria with keywords) goes
in ``qti-rubric-block`` elements with QTI 3.0's extension form of ``use``
(``use="ext:learnloop-..."``), which other tools show to authors or scorers, or ignore.

Every exported item is valid against the 1EdTech QTI 3.0 ASI XSD shipped in
``schemas/qti3/`` (``validate_item``; see the README there for which file and why).

A package is a zip with ``imsmanifest.xml`` (IMS Content Packaging, resource type
``imsqti_item_xmlv3p0``) and one XML file per item. Reading is defensive: no DTDs or entities
(``defusedxml``), bounded sizes and member counts (zip bombs), no paths outside the package,
and only the interactions above (anything else is refused, by file).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from defusedxml import ElementTree as SafeET

QTI_NS = "http://www.imsglobal.org/xsd/imsqtiasi_v3p0"
CP_NS = "http://www.imsglobal.org/xsd/qti/qtiv3p0/imscp_v1p1"
RESOURCE_TYPE = "imsqti_item_xmlv3p0"
KINDS = ("choice", "numeric", "text", "code")
#: the 1EdTech QTI 3.0 ASI XSD (see schemas/qti3/README.md for which file and why)
XSD = Path(__file__).with_name("schemas") / "qti3" / "qtiv3p0" / "imsqti_asiv3p0_sbacv1p0_v1p0.xsd"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
SUPPORTED = ("qti-choice-interaction", "qti-text-entry-interaction", "qti-extended-text-interaction")
#: every interaction element of QTI 3.0; only SUPPORTED are read
INTERACTIONS = (
    *SUPPORTED,
    "qti-associate-interaction", "qti-custom-interaction", "qti-drawing-interaction",
    "qti-end-attempt-interaction", "qti-gap-match-interaction", "qti-graphic-associate-interaction",
    "qti-graphic-gap-match-interaction", "qti-graphic-order-interaction", "qti-hotspot-interaction",
    "qti-hottext-interaction", "qti-inline-choice-interaction", "qti-match-interaction",
    "qti-media-interaction", "qti-order-interaction", "qti-portable-custom-interaction",
    "qti-position-object-interaction", "qti-select-point-interaction", "qti-slider-interaction",
    "qti-upload-interaction",
)  # fmt: skip
MAX_ZIP_BYTES = 10_000_000
MAX_MEMBERS = 2_000
MAX_MEMBER_BYTES = 1_000_000
MAX_TOTAL_BYTES = 50_000_000

ET.register_namespace("", QTI_NS)


class QtiError(ValueError):
    """A package that cannot be read; ``problems`` name the file (and element) of each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems[:20]))
        self.problems = problems


def _q(tag: str) -> str:
    return f"{{{QTI_NS}}}{tag}"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, _q(tag), {k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def _num(x: float) -> str:
    return repr(float(x))


def _meta_block(body: ET.Element, use: str, view: str) -> ET.Element:
    """A ``qti-rubric-block`` for Learnloop's own fields (``use="ext:learnloop-..."``, the QTI
    3.0 extension form) and the content body that holds them."""
    return _sub(_sub(body, "qti-rubric-block", use=f"ext:{use}", view=view), "qti-content-body")


def item_xml(item: dict[str, Any], language: str = "en") -> bytes:
    """One item (a ``content.models.Item`` dumped to a dict) as a qti-assessment-item, valid
    against the 1EdTech QTI 3.0 ASI XSD (``validate_item``)."""
    kind = item["kind"]
    if kind not in KINDS:
        raise QtiError([f"{item['id']}: {kind} items have no QTI form here"])
    root = ET.Element(
        _q("qti-assessment-item"),
        {
            "identifier": item["id"],
            "title": item["id"],
            "adaptive": "false",
            "time-dependent": "false",
            XML_LANG: language,
        },
    )
    base = {"choice": "identifier", "numeric": "float", "text": "string", "code": "string"}[kind]
    response = _sub(
        root, "qti-response-declaration", identifier="RESPONSE", cardinality="single", base_type=base
    )
    if kind == "code" and item.get("starter"):
        _sub(_sub(response, "qti-default-value"), "qti-value", item["starter"])
    correct = _sub(response, "qti-correct-response")
    if kind == "choice":
        _sub(correct, "qti-value", item["key"])
    elif kind == "numeric":
        _sub(correct, "qti-value", _num(item["answer"]))
    elif kind == "code":
        _sub(correct, "qti-value", item.get("solution") or "")
    else:
        response.set("cardinality", "multiple")
        for ref in item.get("reference_answers") or []:
            _sub(correct, "qti-value", ref)
        if not len(correct):
            response.remove(correct)
    _sub(root, "qti-outcome-declaration", identifier="SCORE", cardinality="single", base_type="float")
    _sub(root, "qti-outcome-declaration", identifier="FEEDBACK", cardinality="single", base_type="identifier")
    body = _sub(root, "qti-item-body")
    fields = _sub(_meta_block(body, "learnloop-meta", "author"), "dl", class_="learnloop-meta")
    for name in ("skills", "difficulty", "minutes", "unit", "tolerance", "pass_fraction"):
        value = item.get(name)
        if value is None:
            continue
        _sub(fields, "dt", name)
        _sub(
            fields,
            "dd",
            " ".join(value)
            if name == "skills"
            else (_num(value) if isinstance(value, float | int) else str(value)),
        )
    hints = _sub(_meta_block(body, "learnloop-hints", "author"), "ol", class_="learnloop-hints")
    for hint in item.get("hints") or []:
        _sub(hints, "li", hint)
    if kind == "choice":
        interaction = _sub(body, "qti-choice-interaction", response_identifier="RESPONSE", max_choices="1")
        _sub(interaction, "qti-prompt", item["stem"])
        for key, text in (item.get("options") or {}).items():
            _sub(interaction, "qti-simple-choice", text, identifier=key)
    elif kind == "numeric":
        _sub(body, "p", item["stem"])
        _sub(_sub(body, "div"), "qti-text-entry-interaction", response_identifier="RESPONSE")
    elif kind == "text":
        criteria = _sub(_meta_block(body, "learnloop-rubric", "scorer"), "ul", class_="learnloop-rubric")
        for c in item.get("rubric") or []:
            entry = _sub(_sub(criteria, "li"), "dl")
            for term, value in (
                ("id", c["id"]),
                ("points", _num(c.get("points", 1.0))),
                ("keywords", None),
                ("description", c["description"]),
            ):
                _sub(entry, "dt", term)
                dd = _sub(entry, "dd", value)
                if term == "keywords":  # a list: keywords may contain any character
                    listed = _sub(dd, "ul")
                    for keyword in c.get("keywords") or []:
                        _sub(listed, "li", keyword)
        interaction = _sub(body, "qti-extended-text-interaction", response_identifier="RESPONSE")
        _sub(interaction, "qti-prompt", item["stem"])
    else:
        # a code item: Learnloop's judge runs the cases; other tools see an extended text
        # interaction (preformatted) with the starter as its default value, and scorers see the
        # language and the cases (JSON) in a rubric block
        code = {
            "language": item.get("language") or "python",
            "cases": item.get("cases") or [],
        }
        block = _meta_block(body, "learnloop-code", "scorer")
        _sub(
            block,
            "pre",
            json.dumps(code, ensure_ascii=False, indent=1),
            class_="learnloop-code",
        )
        interaction = _sub(
            body, "qti-extended-text-interaction", response_identifier="RESPONSE", format="preformatted"
        )
        _sub(interaction, "qti-prompt", item["stem"])
    processing = _sub(root, "qti-response-processing")
    if kind in ("choice", "numeric"):
        cond = _sub(_sub(processing, "qti-response-condition"), "qti-response-if")
        if kind == "choice":
            test = _sub(cond, "qti-match")
        else:
            tol = _num(item.get("tolerance") or 0.0)
            test = _sub(cond, "qti-equal", tolerance_mode="absolute", tolerance=f"{tol} {tol}")
        _sub(test, "qti-variable", identifier="RESPONSE")
        _sub(test, "qti-correct", identifier="RESPONSE")
        _sub(
            _sub(cond, "qti-set-outcome-value", identifier="SCORE"), "qti-base-value", "1", base_type="float"
        )
    _sub(
        _sub(processing, "qti-set-outcome-value", identifier="FEEDBACK"),
        "qti-base-value",
        "EXPLANATION",
        base_type="identifier",
    )
    feedback = _sub(
        root,
        "qti-modal-feedback",
        outcome_identifier="FEEDBACK",
        identifier="EXPLANATION",
        show_hide="show",
    )
    _sub(_sub(feedback, "qti-content-body"), "p", item["explanation"])
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


@lru_cache(maxsize=1)
def _schema() -> Any:
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XMLSchema(etree.parse(str(XSD), parser))


def validate_item(data: bytes, name: str = "item") -> list[str]:
    """What the 1EdTech QTI 3.0 ASI XSD (shipped in ``schemas/qti3/``) says is wrong with one
    qti-assessment-item, each as ``name:line: message``; [] when it is valid. The XML is parsed
    without DTDs, entities or network."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        doc = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        return [f"{name}:{exc.lineno}: not well-formed XML ({exc.msg})"]
    schema = _schema()
    if schema.validate(doc):
        return []
    return [f"{name}:{e.line}: {e.message[:300]}" for e in schema.error_log]


def manifest_xml(item_ids: list[str]) -> bytes:
    ET.register_namespace("", CP_NS)
    root = ET.Element(f"{{{CP_NS}}}manifest", {"identifier": "learnloop-items"})
    ET.SubElement(root, f"{{{CP_NS}}}organizations")
    resources = ET.SubElement(root, f"{{{CP_NS}}}resources")
    for ident in item_ids:
        res = ET.SubElement(
            resources,
            f"{{{CP_NS}}}resource",
            {"identifier": ident, "type": RESOURCE_TYPE, "href": f"items/{ident}.xml"},
        )
        ET.SubElement(res, f"{{{CP_NS}}}file", {"href": f"items/{ident}.xml"})
    out = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    ET.register_namespace("", QTI_NS)
    return out


def export_package(items: list[dict[str, Any]], language: str = "en") -> tuple[bytes, list[str]]:
    """A zip of the items (all four kinds); returns it and the ids of any it left out (family
    items, whose texts are templates: ``services/qti_io.exportable`` turns each into one
    instance first)."""
    kept = [i for i in items if i["kind"] in KINDS and not i.get("family")]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("imsmanifest.xml", manifest_xml([i["id"] for i in kept]))
        for item in kept:
            zf.writestr(f"items/{item['id']}.xml", item_xml(item, language))
    return buffer.getvalue(), [i["id"] for i in items if i not in kept]


# --- reading ------------------------------------------------------------------------------------


@dataclass
class _Reader:
    name: str
    problems: list[str]

    def fail(self, message: str) -> None:
        self.problems.append(f"{self.name}: {message}")


def _parse(data: bytes, where: _Reader) -> ET.Element | None:
    try:
        root: ET.Element = SafeET.fromstring(
            data, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
        return root
    except SafeET.DTDForbidden:
        where.fail("a DTD is not allowed (external entities)")
    except (SafeET.EntitiesForbidden, SafeET.ExternalReferenceForbidden):
        where.fail("entities are not allowed")
    except ET.ParseError as exc:
        where.fail(f"not well-formed XML ({exc})")
    return None


def _text(el: ET.Element | None) -> str:
    """An element's text: as written where it starts with its first character (Learnloop's
    export, which keeps authors' line breaks and final newline), trimmed where the XML was
    indented (other tools' packages)."""
    if el is None:
        return ""
    raw = "".join(el.itertext())
    return raw if raw and not raw[0].isspace() else raw.strip()


def _block_use(block: ET.Element) -> str:
    """Which Learnloop block a ``qti-rubric-block`` is: its ``use`` (``ext:learnloop-...``), or,
    where a converter dropped ``use`` (QTI 2.1 has none), the ``class`` of its content."""
    use = (block.get("use") or "").removeprefix("ext:")
    if use.startswith("learnloop-"):
        return use
    for el in block.iter():
        for name in (el.get("class") or "").split():
            if name.startswith("learnloop-"):
                return name
    return use


def _raw(el: ET.Element) -> str:
    """An element's text exactly (code keeps its indentation and final newline)."""
    return "".join(el.itertext())


def _criterion(li: ET.Element, r: _Reader) -> dict[str, Any]:
    """A rubric criterion from its ``li``: a ``dl`` of id, points, keywords and description,
    or (packages from Learnloop before 2026-12) ``data-*`` attributes and the text."""
    dl = li.find(_q("dl"))
    if dl is None:
        fields: dict[str, Any] = {
            "id": li.get("data-id", ""),
            "points": li.get("data-points", "1"),
            "keywords": li.get("data-keywords") or "",
            "description": _text(li),
        }
    else:
        terms = [_text(t) for t in dl.findall(_q("dt"))]
        cells = dl.findall(_q("dd"))
        fields = dict(zip(terms, [_text(d) for d in cells], strict=False))  # type: ignore[arg-type]
        for term, cell in zip(terms, cells, strict=False):
            listed = cell.find(_q("ul"))
            if term == "keywords" and listed is not None:
                fields["keywords"] = [_raw(k) for k in listed.findall(_q("li"))]
    keywords: Any = fields.get("keywords") or ""
    try:
        points = float(str(fields.get("points") or 1))
    except ValueError:
        r.fail(f"rubric criterion {fields.get('id', '')!r}: points is not a number")
        points = 1.0
    return {
        "id": fields.get("id", ""),
        "description": fields.get("description", ""),
        "points": points,
        "keywords": keywords if isinstance(keywords, list) else [k for k in keywords.split("|") if k],
    }


def read_item(data: bytes, name: str) -> dict[str, Any] | None:
    """An item dict (for ``content.models.Item``) from one qti-assessment-item, or None with
    the problems raised as ``QtiError``."""
    r = _Reader(name, [])
    root = _parse(data, r)
    if root is None:
        raise QtiError(r.problems)
    if root.tag != _q("qti-assessment-item"):
        raise QtiError([f"{name}: the root is not a QTI 3.0 qti-assessment-item"])
    found = [el.tag.split("}")[-1] for el in root.iter() if el.tag.split("}")[-1] in INTERACTIONS]
    unsupported = sorted({t for t in found if t not in SUPPORTED})
    if unsupported:
        raise QtiError(
            [f"{name}: {t} is not supported (choice, text entry and extended text are)" for t in unsupported]
        )
    if len(found) != 1:
        raise QtiError([f"{name}: exactly one interaction is needed, found {len(found)}"])
    item: dict[str, Any] = {"id": root.get("identifier", "")}
    code: dict[str, Any] | None = None
    for block in root.iter(_q("qti-rubric-block")):
        use = _block_use(block)
        if use == "learnloop-meta":
            terms = [_text(t) for t in block.iter(_q("dt"))]
            values = [_text(d) for d in block.iter(_q("dd"))]
            for term, value in zip(terms, values, strict=False):
                if term == "skills":
                    item["skills"] = value.split()
                elif term in ("difficulty", "minutes", "tolerance", "pass_fraction"):
                    try:
                        item[term] = float(value)
                    except ValueError:
                        r.fail(f"{term} is not a number")
                elif term == "unit":
                    item["unit"] = value
        elif use == "learnloop-hints":
            item["hints"] = [_text(li) for li in block.iter(_q("li"))]
        elif use == "learnloop-rubric":
            listed = next(block.iter(_q("ul")), None)
            item["rubric"] = (
                [_criterion(li, r) for li in listed.findall(_q("li"))] if listed is not None else []
            )
        elif use == "learnloop-code":
            try:
                loaded = json.loads(_text(block.find(f".//{_q('pre')}")))
            except ValueError as exc:
                r.fail(f"the learnloop-code block is not JSON ({exc})")
                continue
            if not isinstance(loaded, dict):
                r.fail("the learnloop-code block is not a JSON object")
                continue
            code = loaded
    response = next(root.iter(_q("qti-response-declaration")), None)
    correct_el = response.find(_q("qti-correct-response")) if response is not None else None
    correct = [_text(v) for v in correct_el.iter(_q("qti-value"))] if correct_el is not None else []
    interaction = found[0]
    if interaction == "qti-choice-interaction":
        el = next(root.iter(_q("qti-choice-interaction")))
        item["kind"] = "choice"
        item["stem"] = _text(el.find(_q("qti-prompt")))
        item["options"] = {c.get("identifier", ""): _text(c) for c in el.iter(_q("qti-simple-choice"))}
        item["key"] = correct[0] if correct else None
    elif interaction == "qti-text-entry-interaction":
        item["kind"] = "numeric"
        body = next(root.iter(_q("qti-item-body")))
        item["stem"] = " ".join(t for t in (_text(p) for p in body.findall(_q("p"))) if t)
        try:
            item["answer"] = float(correct[0]) if correct else None
        except ValueError:
            r.fail("the correct response is not a number")
    else:
        el = next(root.iter(_q("qti-extended-text-interaction")))
        item["stem"] = _text(el.find(_q("qti-prompt")))
        if code is not None:
            item["kind"] = "code"
            item["language"] = code.get("language")
            item["cases"] = code.get("cases")
            default = response.find(_q("qti-default-value")) if response is not None else None
            starter = [_raw(v) for v in default.iter(_q("qti-value"))] if default is not None else []
            if starter:
                item["starter"] = starter[0]
            solution = [_raw(v) for v in correct_el.iter(_q("qti-value"))] if correct_el is not None else []
            if solution and solution[0]:
                item["solution"] = solution[0]
        else:
            item["kind"] = "text"
            item["reference_answers"] = correct
    feedback = root.find(_q("qti-modal-feedback"))
    item["explanation"] = _text(feedback)
    if r.problems:
        raise QtiError(r.problems)
    return item


def read_package(data: bytes) -> list[dict[str, Any]]:
    """The items of a QTI 3.0 package (a zip with imsmanifest.xml); ``QtiError`` lists every
    problem by file. Refuses zip bombs, unsafe paths, DTDs and entities."""
    if len(data) > MAX_ZIP_BYTES:
        raise QtiError([f"package: larger than {MAX_ZIP_BYTES} bytes"])
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise QtiError(["package: not a zip file"]) from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise QtiError([f"package: more than {MAX_MEMBERS} files"])
        total = 0
        for info in infos:
            name = info.filename
            if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/"):
                raise QtiError([f"{name}: a path outside the package"])
            if info.file_size > MAX_MEMBER_BYTES:
                raise QtiError([f"{name}: larger than {MAX_MEMBER_BYTES} bytes unpacked"])
            total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise QtiError([f"package: more than {MAX_TOTAL_BYTES} bytes unpacked"])

        def read(name: str) -> bytes:
            with zf.open(name) as fh:  # the declared size may lie: read at most the limit
                content = fh.read(MAX_MEMBER_BYTES + 1)
            if len(content) > MAX_MEMBER_BYTES:
                raise QtiError([f"{name}: larger than {MAX_MEMBER_BYTES} bytes unpacked"])
            return content

        names = {i.filename for i in infos}
        if "imsmanifest.xml" not in names:
            raise QtiError(["package: no imsmanifest.xml"])
        r = _Reader("imsmanifest.xml", [])
        manifest = _parse(read("imsmanifest.xml"), r)
        if manifest is None:
            raise QtiError(r.problems)
        hrefs = [
            res.get("href", "")
            for res in manifest.iter()
            if res.tag.endswith("}resource") and res.get("type", "").startswith("imsqti_item_xmlv3p0")
        ]
        problems: list[str] = []
        items: list[dict[str, Any]] = []
        for href in hrefs:
            if href not in names:
                problems.append(f"imsmanifest.xml: {href} is not in the package")
                continue
            try:
                parsed = read_item(read(href), href)
            except QtiError as exc:
                problems.extend(exc.problems)
                continue
            if parsed is not None:
                items.append(parsed)
        if not hrefs:
            problems.append("imsmanifest.xml: no QTI 3.0 item resources")
        if problems:
            raise QtiError(problems)
        return items


def xsd_findings(data: bytes, limit: int = 200) -> list[str]:
    """What the QTI 3.0 XSD says about each ``qti-assessment-item`` in a package
    (``file:line: message``). Only for a package ``read_package`` accepted, or one whose zip
    opens within the limits; anything that does not open is simply not reported here."""
    out: list[str] = []
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        return out
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS or sum(i.file_size for i in infos) > MAX_TOTAL_BYTES:
            return out
        for info in infos:
            name = info.filename
            if not name.endswith(".xml") or name == "imsmanifest.xml" or info.file_size > MAX_MEMBER_BYTES:
                continue
            if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/"):
                continue
            with zf.open(info) as fh:
                content = fh.read(MAX_MEMBER_BYTES + 1)
            if len(content) > MAX_MEMBER_BYTES or b"qti-assessment-item" not in content[:4000]:
                continue
            if b"<!DOCTYPE" in content or b"<!ENTITY" in content:
                continue  # read_package refuses these; never hand them to a second parser
            out.extend(validate_item(content, name))
            if len(out) >= limit:
                break
    return out[:limit]
