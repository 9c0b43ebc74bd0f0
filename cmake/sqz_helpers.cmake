# sqz_add_test(NAME name LABEL label SOURCES ... [PER_SUITE]): one gtest binary, each TEST discovered
# as a ctest case, or with PER_SUITE each test suite (cmake/gtest_suites.cmake: one process per suite).
include(GoogleTest)
find_package(GTest REQUIRED)

function(sqz_add_test)
  cmake_parse_arguments(T "PER_SUITE" "NAME;LABEL" "SOURCES" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE sqz_lib GTest::gtest GTest::gtest_main)
  target_precompile_headers(${T_NAME} REUSE_FROM sqz_lib)
  target_compile_options(${T_NAME} PRIVATE ${SQZ_GLUE_OPT})
  set_target_properties(${T_NAME} PROPERTIES UNITY_BUILD ${SQZ_UNITY} UNITY_BUILD_BATCH_SIZE 4)
  target_include_directories(${T_NAME} PRIVATE ${CMAKE_SOURCE_DIR}/tests)
  target_compile_definitions(${T_NAME} PRIVATE
    SQZ_SHARED_DIR="${SQZ_SHARED_DIR}"
    SQZ_BINARY="$<TARGET_FILE:sqz>"
    SQZ_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  if(NOT T_PER_SUITE)
    gtest_discover_tests(${T_NAME} PROPERTIES LABELS ${T_LABEL} DISCOVERY_TIMEOUT 120)
    return()
  endif()
  set(cases ${CMAKE_CURRENT_BINARY_DIR}/${T_NAME}_suites.cmake)
  add_custom_command(TARGET ${T_NAME} POST_BUILD BYPRODUCTS ${cases}
    COMMAND ${CMAKE_COMMAND} -DTEST_EXECUTABLE=$<TARGET_FILE:${T_NAME}> -DCTEST_FILE=${cases} -DLABEL=${T_LABEL}
            -P ${CMAKE_SOURCE_DIR}/cmake/gtest_suites.cmake
    VERBATIM)
  # ctest reads the cases once the binary is built; before that it says so instead of failing to include.
  set(include ${CMAKE_CURRENT_BINARY_DIR}/${T_NAME}_include.cmake)
  file(WRITE ${include} "if(EXISTS [=[${cases}]=])\n  include([=[${cases}]=])\nelse()\n"
                        "  add_test([=[${T_NAME}_NOT_BUILT]=] [=[${T_NAME}_NOT_BUILT]=])\nendif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${include})
endfunction()
