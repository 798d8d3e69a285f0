"""nas.deprecation: API arguments renamed to the command line's words; the old keyword names keep working until
DROP_VERSION, each with a one-line DeprecationWarning naming the new name and that version."""
import inspect
import warnings

import pytest

from nas.deprecation import DROP_VERSION, renamed_arguments
from nas.errors import NasError


def test_an_old_keyword_reaches_the_new_argument_with_one_warning():
    @renamed_arguments(name_or_path="device")
    def load(device, *, dtype=None):
        return device, dtype

    with pytest.warns(DeprecationWarning) as caught:
        assert load(name_or_path="raspi4", dtype="fp32") == ("raspi4", "fp32")
    assert [str(w.message) for w in caught] == [
        f"argument 'name_or_path' is deprecated, use 'device' (removed in {DROP_VERSION})"]
    assert caught[0].filename == __file__  # points at the caller's line
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new name (or a positional) warns of nothing
        assert load("raspi4") == load(device="raspi4") == ("raspi4", None)
    with pytest.raises(TypeError, match="got 'device' and its deprecated name 'name_or_path'"):
        load(device="a", name_or_path="b")
    assert list(inspect.signature(load).parameters) == ["device", "dtype"]  # help() shows the new names


def test_a_renamed_dataclass_field_accepts_its_old_name():
    from nas.search import SearchConfig

    with pytest.warns(DeprecationWarning, match="argument 'latency_dtype' is deprecated, use 'dtype' "):
        cfg = SearchConfig(space="fbnet-c100", devices=["raspi4"], latency_dtype="int8")
    assert cfg.dtype == "int8" and not hasattr(cfg, "latency_dtype")
    assert SearchConfig(space="fbnet-c100", devices=["raspi4"], dtype="fp32").dtype == "fp32"


def _old_keywords():
    """(function, old -> new) for every decorated public function: each old name is gone from the signature, each
    new one is there."""
    from nas.deploy import target_from_arch, targets_from_study
    from nas.latency import load, read_table
    from nas.latency.fitted import fit_table
    from nas.latency.measure.profile import profile_space
    from nas.latency.measure.validate import validate
    from nas.latency.table import resolve
    from nas.latency.transfer.adapt import adapt
    from nas.latency.transfer.here import adapt_here
    from nas.search import SearchConfig, create_search
    from nas.search.report import write_report
    from nas.space import load_space

    return [load_space, load, read_table, resolve, validate, profile_space, adapt, adapt_here, fit_table, target_from_arch,
            targets_from_study, write_report, create_search, SearchConfig.__init__]


@pytest.mark.parametrize("fn", _old_keywords(), ids=lambda f: f.__qualname__)
def test_every_renamed_argument_is_a_real_parameter(fn):
    params = inspect.signature(fn).parameters
    assert fn.renamed_arguments
    for old, new in fn.renamed_arguments.items():
        assert new in params and old not in params, (fn.__qualname__, old, new)


def _warned(call, old):
    """``call()``, which must warn of ``old`` (and of nothing but old names), one line each."""
    import re

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return call()
        finally:
            messages = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
            assert any(m.startswith(f"argument '{old}' is deprecated") for m in messages), messages
            pattern = rf"argument '\w+' is deprecated, use '\w+' \(removed in {re.escape(DROP_VERSION)}\)"
            assert all(re.fullmatch(pattern, m) for m in messages), messages


def test_old_keywords_of_the_latency_api_still_work(tmp_path):
    from nas.latency import load, read_table
    from nas.latency.fitted import fit_table
    from nas.latency.measure.profile import profile_space
    from nas.latency.measure.validate import validate
    from nas.latency.transfer.adapt import adapt
    from nas.latency.transfer.here import adapt_here

    from nas.space import load_space

    assert _warned(lambda: load_space(name_or_path="fbnet-c100"), "name_or_path").name == "fbnet-c100"
    assert _warned(lambda: load(name_or_path="raspi4"), "name_or_path").device == "raspi4"
    assert _warned(lambda: read_table(name_or_path="raspi4"), "name_or_path").device == "raspi4"
    # the expensive ones stop at their first check, on the value the old name passed on (named by its new name)
    with pytest.raises(NasError, match="unknown device 'raspi5'") as err:
        _warned(lambda: validate(name_or_path="raspi5", space_name="fbnet-c100", progress=False), "name_or_path")
    assert err.value.argument == "device"
    csv = tmp_path / "a.csv"
    csv.write_text("arch\nnot-an-arch\n")
    with pytest.raises(NasError, match="a.csv"):
        _warned(lambda: validate("raspi4", "fbnet-c100", archs_csv=str(csv), progress=False), "archs_csv")
    with pytest.raises(NasError, match="a.csv"):
        _warned(lambda: profile_space(space_name="fbnet-c100", device_name="x", archs_csv=str(csv),
                                      out_dir=tmp_path, progress=False), "space_name")
    for call in (lambda: adapt(space_name="no-such-space", measured_csv=str(csv), device_name="x"),
                 lambda: fit_table(space_name="no-such-space", measured_csv=str(csv), device_name="x"),
                 lambda: adapt_here(space_name="no-such-space", n=5, device_name="x", output=tmp_path / "x.yaml")):
        with pytest.raises(NasError, match="unknown search space 'no-such-space'") as err:
            _warned(call, "space_name")
        assert err.value.argument == "space"
    with pytest.raises(NasError, match="unknown search space 'fbnet-c100x'"):
        _warned(lambda: adapt("fbnet-c100x", measured_csv=str(csv), device_name="x"), "measured_csv")


def test_old_keywords_of_the_search_and_deploy_api_still_work(tmp_path):
    import nas.latency
    from nas.deploy import target_from_arch, targets_from_study
    from nas.proxies import Scorer
    from nas.search import create_search
    from nas.search.report import write_report
    from nas.space import load_space

    t = _warned(lambda: target_from_arch(space_name=None, arch_text="mobilenetv2-0.5"), "space_name")
    assert t.name == "mobilenetv2-0.5" and t.space == "mobilenetv2-0.5-c10"
    storage = f"sqlite:///{tmp_path}/s.db"
    for call in (lambda: targets_from_study(storage, study_name="nope", top_k=1),
                 lambda: write_report(storage, study_name="nope", out_dir=tmp_path / "o")):
        with pytest.raises(NasError, match="no study 'nope'") as err:
            _warned(call, "study_name")
        assert err.value.argument == "study"
    space = load_space("fbnet-c100")
    run = _warned(lambda: create_search(space, latency=[nas.latency.load("raspi4")],
                                        scorer=Scorer(space, ["params"], data="noise"), study_name="old"),
                  "study_name")
    assert run.study.study_name == "old"


def test_a_warning_of_a_renamed_function_still_points_at_its_caller():
    """The decorator adds a frame: load()'s own warning (stacklevel) must skip it, or every HostMismatchWarning
    would be reported at nas/deprecation.py."""
    from nas.latency import load
    from nas.latency.measure.host import HostMismatchWarning

    with pytest.warns(HostMismatchWarning) as caught:
        load("x86-2vcpu")  # shipped without a host fingerprint: it always warns
    assert caught[0].filename == __file__
