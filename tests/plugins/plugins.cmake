# SPDX-License-Identifier: MIT
# Tests of the first-party plugins and of the plugin SDK, included from
# tests/CMakeLists.txt. Each plugin's source is compiled straight into a test
# executable driven by blazebot/testing.h (one plugin per executable: each
# defines blazebot_plugin_v1). The built .so files are checked as the daemon
# sees them: only the entry symbol exported, only libc needed, loadable with
# dlopen. Fixtures built wrong on purpose prove that the check catches each
# mistake. Last, the SDK is installed into a scratch prefix and the installed
# copy of the example plugin (share/blazebot/examples/hello-plugin) is built
# out of tree against it, with CMake and with make.
set(BLAZEBOT_PLUGIN_TESTS_DIR ${CMAKE_CURRENT_LIST_DIR})
set(BLAZEBOT_PLUGIN_TESTS_TMP ${CMAKE_CURRENT_BINARY_DIR}/tmp)

function(blazebot_plugin_test name)
  add_executable(ptest_${name} ${ARGN})
  set_target_properties(ptest_${name} PROPERTIES C_STANDARD 99 C_EXTENSIONS OFF)
  target_link_libraries(ptest_${name} PRIVATE blazebot::sdk PkgConfig::JANSSON)
  target_include_directories(ptest_${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests/common)
  blazebot_warnings(ptest_${name})
  # testing.h must stay quiet under an author's plain -Wall -Wextra, which
  # includes the truncation warnings the daemon's own targets turn off.
  target_compile_options(ptest_${name} PRIVATE -Wpedantic
    $<$<C_COMPILER_ID:GNU>:-Wformat-truncation>)
  add_test(NAME plugins.${name} COMMAND ptest_${name} ${BLAZEBOT_PLUGIN_TEST_ARGS})
  set_tests_properties(plugins.${name} PROPERTIES TIMEOUT 120
    ENVIRONMENT "BLAZEBOT_TEST_TMP=${BLAZEBOT_PLUGIN_TESTS_TMP}")
endfunction()

blazebot_plugin_test(testing ${BLAZEBOT_PLUGIN_TESTS_DIR}/test_testing.c)
blazebot_plugin_test(testing_11 ${BLAZEBOT_PLUGIN_TESTS_DIR}/test_testing_11.c)
blazebot_plugin_test(echo ${BLAZEBOT_PLUGIN_TESTS_DIR}/test_echo.c
  ${PROJECT_SOURCE_DIR}/plugins/echo/echo.c)
blazebot_plugin_test(commands ${BLAZEBOT_PLUGIN_TESTS_DIR}/test_commands.c
  ${PROJECT_SOURCE_DIR}/plugins/commands/commands.c
  ${PROJECT_SOURCE_DIR}/plugins/common/profile.c)
blazebot_plugin_test(welcome ${BLAZEBOT_PLUGIN_TESTS_DIR}/test_welcome.c
  ${PROJECT_SOURCE_DIR}/plugins/welcome/welcome.c
  ${PROJECT_SOURCE_DIR}/plugins/common/profile.c)
blazebot_plugin_test(archive ${BLAZEBOT_PLUGIN_TESTS_DIR}/test_archive.c
  ${PROJECT_SOURCE_DIR}/plugins/archive/archive.c)

set(BLAZEBOT_PLUGIN_TEST_ARGS $<TARGET_FILE:echo> $<TARGET_FILE:commands>
  $<TARGET_FILE:archive> $<TARGET_FILE:welcome>)
blazebot_plugin_test(dlopen ${BLAZEBOT_PLUGIN_TESTS_DIR}/test_dlopen.c)
target_link_libraries(ptest_dlopen PRIVATE ${CMAKE_DL_LIBS})
add_dependencies(ptest_dlopen echo commands archive welcome)
unset(BLAZEBOT_PLUGIN_TEST_ARGS)

# The built plugins: blazebot_plugin_v1 is the only export, libc the only
# library needed.
foreach(plugin echo commands archive welcome)
  add_test(NAME plugins.exports.${plugin}
    COMMAND ${CMAKE_COMMAND} -DPLUGIN=$<TARGET_FILE:${plugin}> -DNM=${CMAKE_NM}
      -DREADELF=${CMAKE_READELF} -DONLY_LIBC=ON -P ${BLAZEBOT_CHECK_PLUGIN_SCRIPT})
endforeach()

# The check itself: it must reject each fixture for the right reason, and
# accept a third-party plugin that links a library.
function(blazebot_plugin_fixture name)
  add_library(${name} MODULE ${BLAZEBOT_PLUGIN_TESTS_DIR}/fixture.c)
  set_target_properties(${name} PROPERTIES PREFIX "" C_STANDARD 99)
  target_link_libraries(${name} PRIVATE blazebot::sdk)
  target_compile_definitions(${name} PRIVATE ${ARGN})
endfunction()
blazebot_plugin_fixture(fixture_leaky LEAK)
blazebot_plugin_fixture(fixture_noentry NO_ENTRY)
set_target_properties(fixture_noentry PROPERTIES C_VISIBILITY_PRESET hidden)
blazebot_plugin_fixture(fixture_needy NEEDS_JANSSON)
set_target_properties(fixture_needy PROPERTIES C_VISIBILITY_PRESET hidden)
target_link_libraries(fixture_needy PRIVATE PkgConfig::JANSSON)

function(blazebot_check_fixture test target only_libc regex)
  add_test(NAME plugins.check.${test}
    COMMAND ${CMAKE_COMMAND} -DPLUGIN=$<TARGET_FILE:${target}> -DNM=${CMAKE_NM}
      -DREADELF=${CMAKE_READELF} -DONLY_LIBC=${only_libc} -P ${BLAZEBOT_CHECK_PLUGIN_SCRIPT})
  if(regex)
    # The check fails (non-zero), and says why: the regex is what passes.
    set_tests_properties(plugins.check.${test} PROPERTIES PASS_REGULAR_EXPRESSION "${regex}")
  endif()
endfunction()
# CMake wraps the message at any space, hence [ \n]+ between words.
blazebot_check_fixture(rejects-extra-export fixture_leaky OFF
  "exports[ \n]+more[ \n]+than[ \n]+blazebot_plugin_v1")
blazebot_check_fixture(rejects-missing-entry fixture_noentry OFF
  "does[ \n]+not[ \n]+export[ \n]+blazebot_plugin_v1")
blazebot_check_fixture(rejects-library fixture_needy ON "needs[ \n]+libjansson")
blazebot_check_fixture(accepts-third-party-library fixture_needy OFF "")

# C++ authors: a plugin compiles (BLAZEBOT_PLUGIN needs C++20's designated
# initialisers there), and a test using testing.h compiles as C++11.
find_program(BLAZEBOT_CXX NAMES c++ g++ clang++)
if(BLAZEBOT_CXX)
  add_test(NAME plugins.sdk-cxx
    COMMAND ${BLAZEBOT_CXX} -std=c++20 -Wall -Werror -fsyntax-only
      -I${PROJECT_SOURCE_DIR}/sdk-headers -x c++ ${BLAZEBOT_PLUGIN_TESTS_DIR}/fixture.c)
  add_test(NAME plugins.testing-cxx
    COMMAND ${BLAZEBOT_CXX} -std=c++11 -Wall -Wextra -Werror -fsyntax-only
      -I${PROJECT_SOURCE_DIR}/sdk-headers -I${PROJECT_SOURCE_DIR}/tests/common -x c++
      ${BLAZEBOT_PLUGIN_TESTS_DIR}/test_echo.c)
endif()

# Install, then out-of-tree builds of the installed hello-plugin (CMake and make).
add_test(NAME plugins.outoftree
  COMMAND sh ${BLAZEBOT_PLUGIN_TESTS_DIR}/outoftree.sh ${CMAKE_BINARY_DIR}
    ${CMAKE_CURRENT_BINARY_DIR}/outoftree)
set_tests_properties(plugins.outoftree PROPERTIES TIMEOUT 600 RUN_SERIAL TRUE)
