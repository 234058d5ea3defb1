"""Runs inside the sandbox (never imported by the harness): BFCL's multi-turn API simulators and its state/response
checker, on calls decoded from a model's replies.

BFCL executes a step by `eval()` of call strings built from the model's reply, so this is untrusted-derived code: the
harness sends this file's text to `Sandbox.run_python` with the request appended, and reads one line back. bfcl-eval's
own source files travel inside the request (a finder serves them from memory), so the process and Docker sandboxes
run the very code installed on the host, whether or not the sandbox can see that installation. Standard library only.

Request (JSON): {"op": "execute" | "check", "nonce", "modules": {name: source}, "packages": [names], "entry": {"id",
"initial_config", "involved_classes"}, "long_context", "model_name", ...}
- execute: fresh instances from the initial configuration, then every call of `history` (earlier steps, results
  dropped), then `step`; answers {"results": [one string per call of `step`]}.
- check: bfcl's multi_turn_checker(decoded, ground_truth, entry, category, model_name); answers {"valid",
  "error_type", "error_message"}.
The answer is the last line of stdout, prefixed by the request's nonce.
"""

import importlib.abc
import importlib.util
import json
import sys


class _Sources(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, modules, packages):
        self.modules, self.packages = modules, set(packages)

    def find_spec(self, name, path=None, target=None):
        if name in self.modules:
            return importlib.util.spec_from_loader(name, self, is_package=name in self.packages)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(compile(self.modules[module.__name__], "<bfcl_eval:%s>" % module.__name__, "exec"), module.__dict__)


def _execute(utils, request, calls):
    entry = request["entry"]
    results = []
    for call in calls:  # one at a time: the instances live on in the executor's globals between calls
        out, _ = utils.execute_multi_turn_func_call(
            [call],
            entry["initial_config"],
            entry["involved_classes"],
            request["model_name"],
            entry["id"],
            long_context=request["long_context"],
            is_evaL_run=False,
        )
        results.extend(out)
    return results


def main(text):
    request = json.loads(text)
    sys.meta_path.insert(0, _Sources(request["modules"], request["packages"]))
    from bfcl_eval.eval_checker.multi_turn_eval import multi_turn_utils

    if request["op"] == "execute":
        utils = multi_turn_utils
        _execute(utils, request, [])
        for step in request["history"]:
            _execute(utils, request, step)
        answer = {"results": _execute(utils, request, request["step"])}
    else:
        from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import multi_turn_checker

        found = multi_turn_checker(
            request["decoded"], request["ground_truth"], request["entry"], request["category"], request["model_name"]
        )
        answer = {
            "valid": bool(found.get("valid")),
            "error_type": str(found.get("error_type", ""))[:200],
            "error_message": str(found.get("error_message", ""))[:2000],
        }
    sys.stdout.write("\n" + request["nonce"] + json.dumps(answer) + "\n")
    sys.stdout.flush()
