# Script mode (run after each build of a gtest binary): writes CTEST_FILE with one ctest case per
# test suite, `Suite.*`, running `TEST_EXECUTABLE --gtest_filter=Suite.*` with LABEL. A case per
# suite instead of per TEST: each process start loads libtorch (about 0.5 s), which made 447 unit
# cases cost 240 s of ctest time for about 20 s of tests.
# Usage: cmake -DTEST_EXECUTABLE=... -DCTEST_FILE=... -DLABEL=... -P gtest_suites.cmake
execute_process(COMMAND "${TEST_EXECUTABLE}" --gtest_list_tests OUTPUT_VARIABLE listing RESULT_VARIABLE rc
                TIMEOUT 120)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${TEST_EXECUTABLE} --gtest_list_tests failed (${rc}):\n${listing}")
endif()
string(REPLACE "\n" ";" lines "${listing}")
set(cases "")
foreach(line IN LISTS lines)
  # Suite lines start in column 0 and end in '.' (a typed suite adds "  # TypeParam = ...").
  if(line MATCHES "^([A-Za-z0-9_/]+)\\.")
    set(name "${CMAKE_MATCH_1}.*")
    string(APPEND cases "add_test([=[${name}]=] [=[${TEST_EXECUTABLE}]=] [=[--gtest_filter=${name}]=])\n"
                        "set_tests_properties([=[${name}]=] PROPERTIES LABELS [=[${LABEL}]=])\n")
  endif()
endforeach()
if(cases STREQUAL "")
  message(FATAL_ERROR "${TEST_EXECUTABLE} lists no test suites")
endif()
file(WRITE "${CTEST_FILE}.tmp" "${cases}")
file(RENAME "${CTEST_FILE}.tmp" "${CTEST_FILE}")
