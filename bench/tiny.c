/* SPDX-License-Identifier: Apache-2.0 */
/* The smallest program that exits 0: no libc, no dynamic loader, so that
 * the bench measures the exec and santad, not ld.so. */
void _start(void)
{
	__asm__ volatile("mov $60, %eax\n\txor %edi, %edi\n\tsyscall");
	__builtin_unreachable();
}
