# clozit_module(NAME DEPS ...): one static library per folder under src/,
# built from every .cpp in it (and its detail/ folder), linked to its deps.
function(clozit_module name)
  cmake_parse_arguments(M "" "" "DEPS;EXTRA_SOURCES" ${ARGN})
  file(GLOB_RECURSE sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${name}/*.cpp)
  add_library(clozit_${name} STATIC ${sources} ${M_EXTRA_SOURCES})
  target_include_directories(clozit_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(clozit_${name} PUBLIC ${M_DEPS})
endfunction()

# clozit_tests(NAME DEPS ...): one GoogleTest binary from tests/NAME/*_test.cpp.
function(clozit_tests name)
  cmake_parse_arguments(T "" "" "DEPS" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${name}/*_test.cpp)
  if(NOT sources)
    return()
  endif()
  add_executable(${name}_tests ${sources})
  target_include_directories(${name}_tests PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(${name}_tests PRIVATE ${T_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  gtest_discover_tests(${name}_tests DISCOVERY_MODE PRE_TEST PROPERTIES TIMEOUT 600)
endfunction()
