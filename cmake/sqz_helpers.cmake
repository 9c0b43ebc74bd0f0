# sqz_add_test(NAME name LABEL label SOURCES ...): one gtest binary, each TEST discovered as a ctest case.
include(GoogleTest)
find_package(GTest REQUIRED)

function(sqz_add_test)
  cmake_parse_arguments(T "" "NAME;LABEL" "SOURCES" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE sqz_lib GTest::gtest GTest::gtest_main)
  target_precompile_headers(${T_NAME} REUSE_FROM sqz_lib)
  target_include_directories(${T_NAME} PRIVATE ${CMAKE_SOURCE_DIR}/tests)
  target_compile_definitions(${T_NAME} PRIVATE
    SQZ_SHARED_DIR="${SQZ_SHARED_DIR}"
    SQZ_BINARY="$<TARGET_FILE:sqz>"
    SQZ_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  gtest_discover_tests(${T_NAME} PROPERTIES LABELS ${T_LABEL} DISCOVERY_TIMEOUT 120)
endfunction()
