# ctest helper: SAMPLE must embed a code object for each of ARCHS.
execute_process(COMMAND ${ROC_OBJ_LS} ${SAMPLE} RESULT_VARIABLE exit_code
                OUTPUT_VARIABLE listing ERROR_VARIABLE err)
if(NOT exit_code EQUAL 0)
  message(FATAL_ERROR "roc-obj-ls failed (${exit_code}): ${err}")
endif()
foreach(arch IN LISTS ARCHS)
  if(NOT listing MATCHES "amdgcn-amd-amdhsa--${arch}[ :\n]")
    message(FATAL_ERROR "no ${arch} code object in ${SAMPLE}:\n${listing}")
  endif()
endforeach()
message("${listing}")
