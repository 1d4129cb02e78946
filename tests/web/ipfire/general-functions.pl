# Test stand-in for IPFire's /var/ipfire/general-functions.pl (IPFire's own is not part of the project).
package General;
our $swroot = ($ENV{'ZONEVPN_ROOT'} // '') . '/var/ipfire';
1;
