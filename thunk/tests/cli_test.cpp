// gmem-advise against a fake sysfs tree and a fake kernel.
#include <cerrno>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fake_kernel.h"
#include "fake_sysfs.h"
#include "gmem/hsakmt_hmadvise.h"
#include "gmem_advise_cli.h"

namespace gmem::tools {
namespace {

using thunk::testing::FakeKernel;
using thunk::testing::FakeSysfs;

constexpr const char kNoHsaRuntime[] = "/nonexistent/libhsa-runtime64.so.1";

class GmemAdviseTest : public ::testing::Test {
 protected:
  int run(std::vector<std::string> arguments, const char* backend_request = nullptr) {
    std::vector<const char*> argv = {"gmem-advise", "--sysfs-root", sysfs_.root().c_str()};
    for (const std::string& argument : arguments) argv.push_back(argument.c_str());
    out_.str("");
    err_.str("");
    // No HSA runtime loads, so on a stock kernel selection reaches libhsakmt.
    CliEnvironment environment{kernel_, backend_request, 4096, kNoHsaRuntime};
    return run_gmem_advise(static_cast<int>(argv.size()), argv.data(), out_, err_,
                           environment);
  }
  std::string out() const { return out_.str(); }
  std::string err() const { return err_.str(); }

  FakeSysfs sysfs_;
  FakeKernel kernel_;
  std::ostringstream out_, err_;
};

TEST_F(GmemAdviseTest, NodesListsEveryNumbering) {
  sysfs_.add_stock_machine();
  ASSERT_EQ(run({"nodes"}), 0) << err();
  EXPECT_EQ(out(),
            "KFD node  type   gpu_id      GMEM node     name\n"
            "0         CPU    0           0 (assumed)   \n"
            "1         GPU    43690       -             gfx90a\n"
            "2         GPU    48059       -             gfx1030\n");
  EXPECT_FALSE(kernel_.touched_kernel());
}

TEST_F(GmemAdviseTest, ExplainPrintsEveryBackendExactly) {
  sysfs_.add_gmem_machine();
  ASSERT_EQ(run({"explain", "--hint", "prefetch", "--node", "1"}), 0) << err();
  EXPECT_EQ(out(),
            "PREFETCH on KFD node 1, start 0x7f0000000000, size 0x200000\n"
            "backend syscall:\n"
            "  hmadvise(hnid=2, start=0x7f0000000000, len=0x200000, behavior=MADV_PREFETCH)\n"
            "  = syscall(463, 2, 0x7f0000000000, 0x200000, 0x1a)\n"
            "backend rocr:\n"
            "  hsa_amd_svm_prefetch_async(ptr=0x7f0000000000, size=0x200000, agent of KFD "
            "node 1, 0 dependencies, completion signal)\n"
            "  then waits for the completion signal\n"
            "backend kfd:\n"
            "  hsaKmtSVMSetAttr(start=0x7f0000000000, size=0x200000, nattr=1)\n"
            "    attrs[0] = {HSA_SVM_ATTR_PREFETCH_LOC (1), 0x1}\n"
            "  -> AMDKFD_IOC_SVM op=SET_ATTR start_addr=0x7f0000000000 size=0x200000 nattr=1\n"
            "    attrs[0] = {KFD_IOCTL_SVM_ATTR_PREFETCH_LOC (1), 0xaaaa gpu_id of KFD node 1}\n");
  EXPECT_FALSE(kernel_.touched_kernel());
}

TEST_F(GmemAdviseTest, ExplainShowsSpecialValuesByName) {
  sysfs_.add_gmem_machine();
  ASSERT_EQ(run({"explain", "--hint", "UNSET_PREFERRED_LOC", "--node", "0",
                 "--backend", "kfd"}), 0);
  EXPECT_NE(out().find("{KFD_IOCTL_SVM_ATTR_PREFERRED_LOC (0), 0xffffffff "
                       "KFD_IOCTL_SVM_LOCATION_UNDEFINED}"),
            std::string::npos) << out();
  ASSERT_EQ(run({"explain", "--hint", "read-mostly", "--node", "0", "--backend", "kfd"}), 0);
  EXPECT_NE(out().find("{KFD_IOCTL_SVM_ATTR_SET_FLAGS (5), 0x20 "
                       "KFD_IOCTL_SVM_FLAG_GPU_READ_MOSTLY}"),
            std::string::npos) << out();
  ASSERT_EQ(run({"explain", "--hint", "dontneed", "--node", "none", "--size", "4K"}), 0);
  EXPECT_NE(out().find("hmadvise(hnid=-1, start=0x7f0000000000, len=0x1000, "
                       "behavior=MADV_DONTNEED)"),
            std::string::npos) << out();
  EXPECT_NE(out().find("madvise(0x7f0000000000, 0x1000, MADV_DONTNEED)"),
            std::string::npos) << out();
}

TEST_F(GmemAdviseTest, ExplainPinOnKfdSaysNoEquivalent) {
  sysfs_.add_gmem_machine();
  ASSERT_EQ(run({"explain", "--hint", "pin", "--node", "1", "--backend", "kfd"}), 0);
  EXPECT_NE(out().find("no equivalent (status HSAKMT_STATUS_NOT_IMPLEMENTED)"),
            std::string::npos) << out();
}

TEST_F(GmemAdviseTest, ExplainRefusesBadInputLikeTheLibrary) {
  sysfs_.add_gmem_machine();
  EXPECT_EQ(run({"explain", "--hint", "accessed-by", "--node", "0", "--backend", "syscall"}), 1);
  EXPECT_NE(out().find("refused before any kernel call (HSAKMT_STATUS_INVALID_NODE_UNIT): "
                       "ACCESSED_BY needs a GPU node; KFD node 0 is a CPU node"),
            std::string::npos) << out();
  EXPECT_EQ(run({"explain", "--hint", "prefetch", "--node", "1", "--start", "0x1001"}), 1);
  EXPECT_NE(out().find("(HSAKMT_STATUS_MEMORY_ALIGNMENT)"), std::string::npos) << out();
}

TEST_F(GmemAdviseTest, ExplainRejectsUnparsableArguments) {
  sysfs_.add_gmem_machine();
  EXPECT_EQ(run({"explain", "--hint", "teleport", "--node", "1"}), 2);
  EXPECT_NE(err().find("unknown hint \"teleport\""), std::string::npos);
  EXPECT_EQ(run({"explain", "--hint", "prefetch", "--node", "gpu1"}), 2);
  EXPECT_EQ(run({"explain", "--hint", "prefetch", "--node", "1", "--size", "2X"}), 2);
  EXPECT_EQ(run({"explain", "--hint", "prefetch", "--node", "1", "--start", "-4096"}), 2);
  EXPECT_EQ(run({"explain", "--hint", "prefetch"}), 2);  // --node is required
  EXPECT_EQ(run({}), 2);                                  // a subcommand is required
}

TEST_F(GmemAdviseTest, BackendShowsTheProbesAndTheChoice) {
  sysfs_.add_stock_machine();
  kernel_.hmadvise_results = {ENOSYS};
  ASSERT_EQ(run({"backend"}), 0) << err();
  EXPECT_EQ(out(),
            "GMEM_THUNK_BACKEND=(unset: auto)\n"
            "hmadvise probe: no " + sysfs_.root() + "/kernel/mm/gmem: not a GMEM kernel\n"
            "ROCr: cannot load the HSA runtime " + kNoHsaRuntime + ": " + kNoHsaRuntime +
            ": cannot open shared object file: No such file or directory\n"
            "KFD: ioctl interface 1.17\n"
            "KFD: SVM GET_ATTR probe succeeded\n"
            "backend: kfd\n"
            "active backend: kfd\n");
}

TEST_F(GmemAdviseTest, BackendFailureIsReported) {
  sysfs_.add_stock_machine();
  kernel_.hmadvise_default = ENOSYS;
  EXPECT_EQ(run({"backend"}, "syscall"), 1);
  EXPECT_NE(out().find("GMEM_THUNK_BACKEND=syscall\n"), std::string::npos) << out();
  EXPECT_NE(err().find("no backend (HSAKMT_STATUS_NOT_SUPPORTED): GMEM_THUNK_BACKEND=syscall, "
                       "but this kernel has "
                       "no hmadvise system call"),
            std::string::npos) << err();
  EXPECT_EQ(run({"backend"}, "bogus"), 1);
  EXPECT_NE(err().find("expected auto, syscall, rocr or kfd"), std::string::npos) << err();
}

TEST_F(GmemAdviseTest, ExplainActiveUsesTheSelectedBackendOnly) {
  sysfs_.add_gmem_machine();
  kernel_.hmadvise_results = {EINVAL};
  ASSERT_EQ(run({"explain", "--hint", "no-access", "--node", "2", "--backend", "active"}), 0);
  EXPECT_NE(out().find("backend syscall:"), std::string::npos);
  EXPECT_EQ(out().find("backend kfd:"), std::string::npos);
  EXPECT_NE(out().find("hnid=3"), std::string::npos);
  EXPECT_NE(out().find("HMADV_NO_ACCESS"), std::string::npos);
}

TEST_F(GmemAdviseTest, ExplainShowsRocrAttributesWithAgentsByNode) {
  sysfs_.add_stock_machine();
  ASSERT_EQ(run({"explain", "--hint", "accessed-by", "--node", "2", "--backend", "rocr"}), 0);
  EXPECT_EQ(out(),
            "ACCESSED_BY on KFD node 2, start 0x7f0000000000, size 0x200000\n"
            "backend rocr:\n"
            "  hsa_amd_svm_attributes_set(ptr=0x7f0000000000, size=0x200000, "
            "attribute_count=1)\n"
            "    attribute_list[0] = {HSA_AMD_SVM_ATTRIB_AGENT_ACCESSIBLE_IN_PLACE (0x201), "
            "agent of KFD node 2}\n");
  ASSERT_EQ(run({"explain", "--hint", "unset-preferred-loc", "--node", "1", "--backend",
                 "rocr"}), 0);
  EXPECT_NE(out().find("{HSA_AMD_SVM_ATTRIB_PREFERRED_LOCATION (0x4), null agent (no "
                       "location)}"),
            std::string::npos) << out();
}

TEST_F(GmemAdviseTest, ExplainWorksWithoutATopologyAndNamesTheUnknownIds) {
  // No KFD topology at all (a machine without amdkfd, or a laptop).
  ASSERT_EQ(run({"explain", "--hint", "prefetch", "--node", "1", "--backend", "all"}), 0)
      << err();
  EXPECT_NE(out().find("no KFD topology ("), std::string::npos) << out();
  EXPECT_NE(out().find("hmadvise(hnid=<GMEM node id of KFD node 1>, start=0x7f0000000000, "
                       "len=0x200000, behavior=MADV_PREFETCH)"),
            std::string::npos) << out();
  EXPECT_NE(out().find("{KFD_IOCTL_SVM_ATTR_PREFETCH_LOC (1), <gpu_id of KFD node 1>}"),
            std::string::npos) << out();
  ASSERT_EQ(run({"explain", "--hint", "dontneed", "--node", "3", "--backend", "kfd"}), 0);
  EXPECT_NE(out().find("KFD_IOCTL_SVM_LOCATION_SYSMEM"), std::string::npos) << out();
  EXPECT_FALSE(kernel_.touched_kernel());
  // What needs the machine still says it cannot.
  EXPECT_EQ(run({"explain", "--hint", "prefetch", "--node", "1", "--backend", "active"}), 1);
}

TEST_F(GmemAdviseTest, UsageErrorsAreExitTwoWithoutATopology) {
  EXPECT_EQ(run({"explain", "--hint", "teleport", "--node", "1"}), 2);
  EXPECT_EQ(run({"explain", "--hint", "prefetch", "--node", "x"}), 2);
  EXPECT_EQ(run({"explain", "--hint", "prefetch", "--node", "1", "--backend", "cuda"}), 2);
  EXPECT_EQ(run({"frobnicate"}), 2);
  EXPECT_EQ(run({}), 2);
  EXPECT_NE(err().find("explain"), std::string::npos);  // the usage lists commands
}

TEST_F(GmemAdviseTest, HelpAndVersionExitZero) {
  EXPECT_EQ(run({"--help"}), 0);
  EXPECT_NE(out().find("explain"), std::string::npos) << out();
  EXPECT_EQ(run({"--version"}), 0);
  EXPECT_EQ(out(), "gmem-advise " + std::to_string(HSA_GMEM_VERSION_MAJOR) + "." +
                       std::to_string(HSA_GMEM_VERSION_MINOR) + "." +
                       std::to_string(HSA_GMEM_VERSION_PATCH) + "\n");
}

TEST_F(GmemAdviseTest, BackendFailureNamesTheStatus) {
  sysfs_.add_stock_machine();
  kernel_.hmadvise_default = ENOSYS;
  EXPECT_EQ(run({"backend"}, "rocr"), 1);
  EXPECT_NE(err().find("no backend (HSAKMT_STATUS_NOT_SUPPORTED): ROCr SVM backend unusable"),
            std::string::npos) << err();
}

TEST_F(GmemAdviseTest, MissingTopologyIsAClearError) {
  EXPECT_EQ(run({"nodes"}), 1);
  EXPECT_NE(err().find("no nodes"), std::string::npos) << err();
}

}  // namespace
}  // namespace gmem::tools
