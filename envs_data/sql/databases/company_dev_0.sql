BEGIN TRANSACTION;
CREATE TABLE employees (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  department TEXT NOT NULL,
  city TEXT NOT NULL,
  salary INTEGER NOT NULL,
  hire_year INTEGER NOT NULL
);
INSERT INTO employees VALUES(1,'Vera Bishop','Legal','Lima',123500,2017);
INSERT INTO employees VALUES(2,'Maya Crane','Support','Lisbon',115000,2011);
INSERT INTO employees VALUES(3,'Hiro Bishop','Support','Lima',93000,2018);
INSERT INTO employees VALUES(4,'Quinn Rahman','Finance','Oslo',49500,2018);
INSERT INTO employees VALUES(5,'Yara Castro','Finance','Osaka',135500,2011);
INSERT INTO employees VALUES(6,'Boris Haddad','Marketing','Lisbon',119500,2010);
INSERT INTO employees VALUES(7,'Hiro Baker','Support','Lisbon',68500,2010);
INSERT INTO employees VALUES(8,'Sami Walsh','Sales','Oslo',62000,2010);
INSERT INTO employees VALUES(9,'Alma Okafor','Finance','Denver',96500,2018);
INSERT INTO employees VALUES(10,'Yara Kaplan','Marketing','Nairobi',123000,2018);
INSERT INTO employees VALUES(11,'Carla Fischer','Finance','Osaka',45000,2013);
INSERT INTO employees VALUES(12,'Wen Tanaka','Support','Denver',62500,2013);
INSERT INTO employees VALUES(13,'Pavel Yilmaz','Legal','Denver',78000,2021);
INSERT INTO employees VALUES(14,'Alma Bishop','Sales','Osaka',149500,2021);
INSERT INTO employees VALUES(15,'Carla Jovanovic','Support','Oslo',84000,2013);
INSERT INTO employees VALUES(16,'Cleo Walsh','Legal','Lima',127000,2018);
INSERT INTO employees VALUES(17,'Sami Nakamura','Legal','Lisbon',32500,2018);
INSERT INTO employees VALUES(18,'Kira Arendt','Support','Lisbon',132000,2013);
INSERT INTO employees VALUES(19,'Rosa Arendt','Legal','Lisbon',33500,2020);
INSERT INTO employees VALUES(20,'Dev Fischer','Legal','Osaka',98000,2016);
INSERT INTO employees VALUES(21,'Sami Ibsen','Support','Osaka',97000,2019);
INSERT INTO employees VALUES(22,'Farid Moreau','Support','Lima',123500,2020);
INSERT INTO employees VALUES(23,'Wen Zeller','Support','Oslo',133000,2023);
INSERT INTO employees VALUES(24,'Cleo Nakamura','Sales','Nairobi',75500,2011);
INSERT INTO employees VALUES(25,'Ada Petrov','Marketing','Osaka',38500,2012);
INSERT INTO employees VALUES(26,'Sami Garza','Sales','Oslo',130500,2019);
INSERT INTO employees VALUES(27,'Pavel Okafor','Legal','Oslo',149500,2020);
INSERT INTO employees VALUES(28,'Maya Haddad','Marketing','Osaka',140000,2009);
INSERT INTO employees VALUES(29,'Rosa Ibsen','Finance','Denver',92500,2015);
INSERT INTO employees VALUES(30,'Zane Garza','Legal','Nairobi',122500,2012);
INSERT INTO employees VALUES(31,'Joel Walsh','Sales','Denver',148000,2021);
INSERT INTO employees VALUES(32,'Hiro Walsh','Marketing','Osaka',134000,2022);
INSERT INTO employees VALUES(33,'Luis Ueda','Legal','Nairobi',42000,2014);
INSERT INTO employees VALUES(34,'Hamza Crane','Engineering','Nairobi',47500,2009);
INSERT INTO employees VALUES(35,'Nils Silva','Sales','Denver',54500,2006);
INSERT INTO employees VALUES(36,'Farid Baker','Sales','Osaka',90000,2007);
INSERT INTO employees VALUES(37,'Boris Zeller','Support','Nairobi',36000,2009);
INSERT INTO employees VALUES(38,'Tess Okafor','Legal','Osaka',102000,2009);
INSERT INTO employees VALUES(39,'Carla Bishop','Support','Denver',40000,2014);
INSERT INTO employees VALUES(40,'Rosa Silva','Marketing','Oslo',142500,2019);
INSERT INTO employees VALUES(41,'Ada Kaplan','Marketing','Lisbon',72000,2008);
INSERT INTO employees VALUES(42,'Carla Baker','Sales','Nairobi',116500,2008);
INSERT INTO employees VALUES(43,'Kira Yilmaz','Marketing','Lima',69000,2023);
INSERT INTO employees VALUES(44,'Wen Okafor','Marketing','Oslo',128500,2005);
INSERT INTO employees VALUES(45,'Luis Walsh','Legal','Osaka',81500,2017);
INSERT INTO employees VALUES(46,'Boris Silva','Legal','Oslo',41500,2018);
INSERT INTO employees VALUES(47,'Pavel Duarte','Marketing','Osaka',85000,2020);
INSERT INTO employees VALUES(48,'Nils Petrov','Finance','Oslo',84500,2011);
INSERT INTO employees VALUES(49,'Carla Eklund','Finance','Lima',128500,2011);
INSERT INTO employees VALUES(50,'Edith Duarte','Marketing','Lisbon',133500,2009);
INSERT INTO employees VALUES(51,'Edith Ueda','Finance','Denver',76000,2014);
INSERT INTO employees VALUES(52,'Ximena Tanaka','Finance','Denver',61000,2010);
INSERT INTO employees VALUES(53,'Yara Bishop','Finance','Oslo',120000,2015);
INSERT INTO employees VALUES(54,'Hiro Duarte','Engineering','Osaka',49500,2008);
INSERT INTO employees VALUES(55,'Bruno Eklund','Support','Nairobi',107000,2019);
INSERT INTO employees VALUES(56,'Cleo Rahman','Legal','Denver',52000,2007);
INSERT INTO employees VALUES(57,'Yara Yilmaz','Legal','Denver',50500,2013);
INSERT INTO employees VALUES(58,'Maya Varga','Marketing','Lima',121000,2008);
INSERT INTO employees VALUES(59,'Gemma Walsh','Sales','Osaka',71000,2015);
INSERT INTO employees VALUES(60,'Pavel Rahman','Marketing','Denver',139500,2005);
COMMIT;
