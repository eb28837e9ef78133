/**
 * The argument reading every Python program the task library sends to a
 * server starts with (`python3 - MODE --key value ...`, the program on
 * stdin): `A` maps each `--key` to its value. Interpolated into those
 * programs, so they read their arguments one way.
 */
export const PYTHON_ARGS = String.raw`
import sys

def args():
    out, argv = {}, sys.argv[2:]
    for i in range(0, len(argv) - 1, 2):
        out[argv[i].lstrip('-')] = argv[i + 1]
    return out

A = args()
`;
