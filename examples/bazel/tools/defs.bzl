"""slow_library: a C library whose source comes from one slow generating action (a few seconds)."""

def slow_library(name, megabytes, deps = []):
    """A genrule `slow_<name>` (the slow action: hashes `megabytes` MB on one core) and a cc_library.

    Args:
      name: the library name; the generated function is `<name>_digest()`.
      megabytes: how much work the slow action does (about 0.4 s per 100 MB on one core).
      deps: other cc_library targets.
    """
    native.genrule(
        name = "slow_" + name,
        outs = [name + "_gen.c"],
        cmd = "$(location //tools:burn.sh) %s %d > $@" % (name, megabytes),
        tools = ["//tools:burn.sh"],
    )
    native.cc_library(
        name = name,
        srcs = [name + "_gen.c"],
        deps = deps,
        visibility = ["//visibility:public"],
    )
