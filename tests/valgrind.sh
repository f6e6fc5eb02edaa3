#!/bin/sh
# LOG_COMPILER for `make check-valgrind`: runs one test program under
# memcheck; any error or definite leak fails the test. Shell-script tests
# run as they are: memcheck would only be judging the shell.
case "$(head -c 2 "$1" 2>/dev/null)" in
'#!') exec "$@" ;;
esac
exec valgrind --quiet --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite --show-leak-kinds=definite \
	--suppressions="$(dirname "$0")/valgrind.supp" "$@"
