"""Runs several programs (arguments: program paths; each `--` starts one command with arguments) and
fails unless they all print exactly the same output. Used to check that the C, C++ and Python
versions of an example compute the same numbers."""
import subprocess
import sys


def commands(argv):
    """Programs without arguments, then after each `--` one command with its arguments."""
    groups = [[]]
    for a in argv:
        if a == "--":
            groups.append([])
        else:
            groups[-1].append(a)
    return [[a] for a in groups[0]] + [g for g in groups[1:] if g]


def main():
    outputs = []
    for cmd in commands(sys.argv[1:]):
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            print("%s failed (%d):\n%s%s" % (" ".join(cmd), r.returncode, r.stdout, r.stderr))
            return 1
        outputs.append((" ".join(cmd), r.stdout))
    first_cmd, first = outputs[0]
    print(first)
    for cmd, out in outputs[1:]:
        if out != first:
            import difflib
            print("output of %s differs from %s:" % (cmd, first_cmd))
            print("".join(difflib.unified_diff(first.splitlines(True), out.splitlines(True))))
            return 1
    print("the same output from %d programs" % len(outputs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
