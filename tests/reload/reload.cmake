# SPDX-License-Identifier: MIT
# The reload tests' plugin, built several ways from one source
# (tests/reload/reloadtest.c explains the variants). Included from
# tests/integration/integration.cmake.
set(BLAZEBOT_RELOAD_SRC ${CMAKE_CURRENT_LIST_DIR}/reloadtest.c)
set(BLAZEBOT_RELOAD_OUT ${CMAKE_CURRENT_BINARY_DIR}/reload-plugins)

function(blazebot_reload_variant name)
  blazebot_add_plugin(${name} ${BLAZEBOT_RELOAD_SRC} NO_INSTALL)
  target_compile_definitions(${name} PRIVATE ${ARGN})
  set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${BLAZEBOT_RELOAD_OUT})
endfunction()

# Built wrong on purpose: blazebot_add_plugin's export check would refuse them.
function(blazebot_reload_broken name)
  add_library(${name} MODULE ${BLAZEBOT_RELOAD_SRC})
  set_target_properties(${name} PROPERTIES PREFIX "" C_STANDARD 99 C_VISIBILITY_PRESET hidden
    LIBRARY_OUTPUT_DIRECTORY ${BLAZEBOT_RELOAD_OUT})
  target_link_libraries(${name} PRIVATE blazebot::sdk)
  target_compile_definitions(${name} PRIVATE ${ARGN})
endfunction()

blazebot_reload_variant(rt_v1 RT_VERSION="v1")
blazebot_reload_variant(rt_v2 RT_VERSION="v2")
blazebot_reload_variant(rt_other RT_VERSION="other" RT_NAME="other")
blazebot_reload_variant(rt_failinit RT_VERSION="v3" RT_FAIL_INIT)
blazebot_reload_broken(rt_abi2 RT_ABI_V2)
blazebot_reload_broken(rt_noentry RT_NO_ENTRY)
set(BLAZEBOT_RELOAD_TARGETS rt_v1 rt_v2 rt_other rt_failinit rt_abi2 rt_noentry)
