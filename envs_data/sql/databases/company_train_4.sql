BEGIN TRANSACTION;
CREATE TABLE employees (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  department TEXT NOT NULL,
  city TEXT NOT NULL,
  salary INTEGER NOT NULL,
  hire_year INTEGER NOT NULL
);
INSERT INTO employees VALUES(1,'Ximena Xu','Engineering','Denver',144500,2015);
INSERT INTO employees VALUES(2,'Ines Walsh','Support','Oslo',103500,2018);
INSERT INTO employees VALUES(3,'Joel Garza','Legal','Osaka',72500,2015);
INSERT INTO employees VALUES(4,'Maya Nakamura','Legal','Nairobi',134000,2018);
INSERT INTO employees VALUES(5,'Edith Garza','Engineering','Osaka',142000,2007);
INSERT INTO employees VALUES(6,'Pavel Eklund','Legal','Lima',68500,2017);
INSERT INTO employees VALUES(7,'Pavel Haddad','Engineering','Lisbon',118500,2021);
INSERT INTO employees VALUES(8,'Boris Zeller','Finance','Oslo',69000,2005);
INSERT INTO employees VALUES(9,'Gemma Castro','Legal','Lisbon',133500,2014);
INSERT INTO employees VALUES(10,'Maya Ibsen','Support','Lisbon',139000,2006);
INSERT INTO employees VALUES(11,'Dev Baker','Support','Oslo',95500,2015);
INSERT INTO employees VALUES(12,'Sami Garza','Marketing','Denver',130500,2007);
INSERT INTO employees VALUES(13,'Tess Arendt','Support','Nairobi',136500,2013);
INSERT INTO employees VALUES(14,'Iris Eklund','Sales','Oslo',37500,2007);
INSERT INTO employees VALUES(15,'Greta Nakamura','Support','Denver',142000,2007);
INSERT INTO employees VALUES(16,'Bruno Nakamura','Support','Lima',64000,2009);
INSERT INTO employees VALUES(17,'Hamza Quintero','Marketing','Lima',104000,2012);
INSERT INTO employees VALUES(18,'Sami Arendt','Support','Lisbon',85500,2022);
INSERT INTO employees VALUES(19,'Dario Dalton','Marketing','Osaka',125500,2017);
INSERT INTO employees VALUES(20,'Carla Ueda','Legal','Osaka',89000,2008);
INSERT INTO employees VALUES(21,'Rosa Eklund','Support','Lisbon',86500,2013);
INSERT INTO employees VALUES(22,'Gemma Silva','Legal','Lisbon',75500,2007);
INSERT INTO employees VALUES(23,'Carla Arendt','Finance','Denver',143500,2021);
INSERT INTO employees VALUES(24,'Gemma Ibsen','Finance','Osaka',42500,2022);
INSERT INTO employees VALUES(25,'Gemma Arendt','Support','Lisbon',52500,2018);
INSERT INTO employees VALUES(26,'Wen Duarte','Legal','Osaka',74000,2006);
INSERT INTO employees VALUES(27,'Gemma Okafor','Sales','Lima',108000,2010);
INSERT INTO employees VALUES(28,'Cleo Arendt','Marketing','Oslo',131000,2019);
INSERT INTO employees VALUES(29,'Sami Yilmaz','Marketing','Nairobi',91500,2015);
INSERT INTO employees VALUES(30,'Carla Silva','Marketing','Lima',42500,2016);
INSERT INTO employees VALUES(31,'Elena Bishop','Engineering','Osaka',34500,2019);
INSERT INTO employees VALUES(32,'Farid Duarte','Finance','Denver',77000,2011);
INSERT INTO employees VALUES(33,'Pavel Rahman','Sales','Denver',61500,2021);
INSERT INTO employees VALUES(34,'Maya Zeller','Sales','Oslo',131000,2017);
INSERT INTO employees VALUES(35,'Olga Walsh','Marketing','Oslo',33500,2018);
INSERT INTO employees VALUES(36,'Sami Ueda','Support','Denver',108500,2019);
INSERT INTO employees VALUES(37,'Vera Rahman','Engineering','Nairobi',145500,2018);
INSERT INTO employees VALUES(38,'Luis Crane','Marketing','Oslo',134000,2022);
INSERT INTO employees VALUES(39,'Boris Tanaka','Legal','Denver',74000,2015);
INSERT INTO employees VALUES(40,'Quinn Silva','Finance','Nairobi',106500,2023);
INSERT INTO employees VALUES(41,'Joel Baker','Finance','Lima',129000,2008);
INSERT INTO employees VALUES(42,'Greta Abbott','Finance','Oslo',34500,2011);
INSERT INTO employees VALUES(43,'Bruno Quintero','Finance','Lima',144500,2015);
INSERT INTO employees VALUES(44,'Yara Duarte','Support','Oslo',101000,2012);
INSERT INTO employees VALUES(45,'Ada Arendt','Finance','Lima',141500,2020);
INSERT INTO employees VALUES(46,'Vera Baker','Engineering','Lisbon',47000,2009);
INSERT INTO employees VALUES(47,'Boris Nakamura','Legal','Denver',128500,2015);
INSERT INTO employees VALUES(48,'Gemma Moreau','Engineering','Lisbon',102500,2023);
INSERT INTO employees VALUES(49,'Elena Dalton','Legal','Nairobi',78000,2010);
INSERT INTO employees VALUES(50,'Jamal Arendt','Finance','Osaka',141500,2006);
INSERT INTO employees VALUES(51,'Yara Arendt','Marketing','Osaka',77000,2014);
INSERT INTO employees VALUES(52,'Ines Moreau','Finance','Nairobi',85000,2021);
INSERT INTO employees VALUES(53,'Umar Arendt','Sales','Osaka',90000,2014);
INSERT INTO employees VALUES(54,'Jamal Crane','Engineering','Lisbon',83000,2014);
INSERT INTO employees VALUES(55,'Alma Eklund','Support','Osaka',146000,2023);
INSERT INTO employees VALUES(56,'Cleo Ueda','Support','Osaka',79000,2015);
INSERT INTO employees VALUES(57,'Hamza Ibsen','Legal','Denver',107000,2009);
INSERT INTO employees VALUES(58,'Gemma Baker','Marketing','Denver',103500,2019);
INSERT INTO employees VALUES(59,'Wen Dalton','Engineering','Nairobi',142500,2011);
INSERT INTO employees VALUES(60,'Luis Rahman','Marketing','Lisbon',88500,2009);
COMMIT;
